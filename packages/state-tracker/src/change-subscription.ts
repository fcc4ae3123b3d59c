import {
  type ChangeLog,
  type ChangeRecord,
  isActorCacheError,
  type StreamGapEvent,
  type StreamLagEvent,
  streamChannels,
} from '@actor-cache/core'
import { catchUpAfterTime, catchUpAfterVersion } from './catch-up.js'
import type { ChangeSource } from './change-source.js'
import { EntitySequencer, type OpenGap } from './entity-sequencer.js'
import { backfillOverdue, type GapRepair, resolveStarts, untilDue } from './gap-backfill.js'
import { type CheckedSubscription, recordFilter } from './stream-options.js'

/** What a subscription is doing. */
export type SubscriptionMode = 'starting' | 'catch-up' | 'live' | 'resync' | 'closed'

/** Counters and state of a subscription. */
export interface SubscriptionStats {
  /** Id of the subscription in this process (as in its diagnostics events). */
  id: number
  mode: SubscriptionMode
  /** Changes handed to the consumer. */
  delivered: number
  /** Changes dropped because they were delivered already (seams, re-reads, backfills). */
  duplicates: number
  /** Changes waiting for an earlier version of their entity. */
  early: number
  gapsDetected: number
  gapsBackfilled: number
  /**
   * Gaps open now that a backfill did not close; returns to 0 once the log has the version. A
   * closed subscription keeps what was open at close (each published as `abandoned`).
   */
  gapsUnresolved: number
  /** Times the subscription fell out of the relay's window and read the log itself. */
  overflows: number
  /** Log reads that failed with an unavailability or a timeout and were retried. */
  retries: number
  /** Changes the relay holds that the subscription has not taken yet. */
  lagChanges: number
  /**
   * Age of the newest change delivered (ms, this process's clock against the log's stamps); 0
   * once the subscription has taken everything the relay holds.
   */
  lagMs: number
}

/** What a subscription is built from. */
export interface SubscriptionContext {
  log: ChangeLog
  source: ChangeSource
  /** Records per log read or relay read. */
  pageSize: number
  /** Called once when the subscription closes. */
  onClose(): void
}

let lastId = 0
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }
/** Longest wait for the relay before looking at gaps again (ms). */
const IDLE_WAIT = 5000

const transient = (error: unknown): boolean =>
  isActorCacheError(error, 'E_TIER_UNAVAILABLE') || isActorCacheError(error, 'E_TIMEOUT')

/**
 * A subscription to the changes of a filter: an async iterator that delivers each entity's
 * changes in version order with no gap and no duplicate. It catches up from the log, then takes
 * live changes from the relay's window at its own pace (the consumer's `next()` drives it: a
 * slow consumer slows only itself). Fallen out of the window, it reads the log's feed itself
 * until it catches up. A missing version is read from the log after `gapTimeout`.
 */
export class ChangeSubscription<T = unknown> implements AsyncIterableIterator<ChangeRecord<T>> {
  readonly #ctx: SubscriptionContext
  readonly #s: CheckedSubscription
  readonly #id = ++lastId
  readonly #match: (r: ChangeRecord) => boolean
  readonly #sequencer: EntitySequencer
  readonly #abort = new AbortController()
  #mode: SubscriptionMode = 'starting'
  #out: ChangeRecord[] = []
  #at = 0
  #chain: Promise<unknown> = Promise.resolve()
  #starting: Promise<void> | undefined
  /** Set once the relay is retained (resolved when it is ready). */
  #retained: Promise<void> | undefined
  #cursor = 0
  /** Feed checkpoint from which the log yields every record at `#cursor` or later. */
  #resume: string | undefined
  #after: number | undefined
  #pages: AsyncGenerator<ChangeRecord[], void, undefined> | undefined
  #catchUpFrom: (() => AsyncGenerator<ChangeRecord[], void, undefined>) | undefined
  #counts = { delivered: 0, overflows: 0, retries: 0, lastStamp: undefined as number | undefined }

  /** @internal built by `ChangeStream.subscribe` */
  constructor(ctx: SubscriptionContext, checked: CheckedSubscription) {
    this.#ctx = ctx
    this.#s = checked
    this.#match = recordFilter(checked)
    this.#sequencer = new EntitySequencer({ onGap: (gap, outcome) => this.#gapEvent(gap, outcome) })
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  /** The next change, in per-entity version order; `done` once closed. */
  next(): Promise<IteratorResult<ChangeRecord<T>, undefined>> {
    const result = this.#chain.then(() => this.#next())
    this.#chain = result.catch(() => {})
    return result as Promise<IteratorResult<ChangeRecord<T>, undefined>>
  }

  /**
   * Takes the subscription's place in the stream now rather than at the first `next()`: once it
   * resolves, every change logged afterwards is delivered (with `fromNow`, every change stamped
   * after the log's clock read here). Idempotent.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start().catch((error: unknown) => {
      this.#starting = undefined // a failed start is tried again by the next call
      throw error
    })
    return this.#starting
  }

  /** Closes the subscription (what `break` in a `for await` calls). */
  async return(): Promise<IteratorReturnResult<undefined>> {
    await this.close()
    return DONE
  }

  /**
   * Stops the subscription: a pending `next()` resolves `done`, and the relay is released once
   * the read in flight (if any) ends. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#mode === 'closed') return
    this.#mode = 'closed'
    this.#abort.abort()
    await this.#chain
    await this.#shutdown()
  }

  async #shutdown(): Promise<void> {
    // gaps still open end with the subscription: say so, so gauges of open gaps return to 0
    for (const gap of this.#sequencer.gaps()) {
      if (gap.expected !== undefined) this.#gapEvent(gap, 'abandoned')
    }
    await this.#pages?.return()
    this.#pages = undefined
    if (this.#retained !== undefined) this.#ctx.source.release()
    this.#retained = undefined
    this.#ctx.onClose()
  }

  /** Counters and lag. */
  stats(): SubscriptionStats {
    const c = this.#sequencer.counts()
    const lagChanges = this.#mode === 'live' ? this.#ctx.source.head() - this.#cursor : 0
    const caughtUp =
      this.#mode === 'live' &&
      lagChanges === 0 &&
      this.#at === this.#out.length &&
      this.#sequencer.pending === 0
    const last = caughtUp ? undefined : this.#counts.lastStamp
    return {
      id: this.#id,
      mode: this.#mode,
      delivered: this.#counts.delivered,
      duplicates: c.duplicates,
      early: c.early,
      gapsDetected: c.gapsDetected,
      gapsBackfilled: c.gapsBackfilled,
      gapsUnresolved: c.gapsUnresolved,
      overflows: this.#counts.overflows,
      retries: this.#counts.retries,
      lagChanges,
      lagMs: last === undefined ? 0 : Math.max(0, Date.now() - last),
    }
  }

  async #next(): Promise<IteratorResult<ChangeRecord, undefined>> {
    // each turn either returns or waits on I/O; close() ends the loop
    for (let failures = 0; ; ) {
      if (this.#mode === 'closed') return DONE
      if (this.#at === this.#out.length) {
        this.#out = this.#sequencer.take()
        this.#at = 0
      }
      const r = this.#out[this.#at]
      if (r !== undefined) {
        this.#out[this.#at++] = undefined as unknown as ChangeRecord
        this.#counts.delivered++
        this.#counts.lastStamp = r.timestamp
        return { done: false, value: r }
      }
      try {
        await this.#step()
        failures = 0
      } catch (error) {
        if (this.#abort.signal.aborted) return DONE
        if (!transient(error) || failures >= 100) {
          this.#mode = 'closed'
          this.#abort.abort()
          await this.#shutdown()
          throw error
        }
        failures++
        this.#counts.retries++
        // a pause before the retry (no record is ever at an infinite position)
        await this.#ctx.source.wait(Number.POSITIVE_INFINITY, 50 * failures, this.#abort.signal)
      }
    }
  }

  async #step(): Promise<void> {
    if (this.#mode === 'starting') return this.start()
    const repair: GapRepair = {
      log: this.#ctx.log,
      sequencer: this.#sequencer,
      gapTimeout: this.#s.gapTimeout,
      urgent: this.#sequencer.counts().early > this.#s.bufferSize,
      after: this.#after,
    }
    if (await resolveStarts(repair)) return
    if (await backfillOverdue(repair)) return
    if (this.#mode === 'catch-up') return this.#catchUp()
    if (this.#mode === 'resync') return this.#resync()
    return this.#live()
  }

  async #start(): Promise<void> {
    const source = this.#ctx.source
    if (this.#abort.signal.aborted) return
    this.#retained ??= source.retain()
    await Promise.race([this.#retained, aborted(this.#abort.signal)])
    if (this.#abort.signal.aborted) return
    // The place in the relay is taken before the log is read: what the relay held before it
    // was visible to the catch-up, what comes after it is taken live; the seam's overlap is
    // dropped by (entity, version).
    this.#cursor = source.head()
    const place = source.checkpointAt(this.#cursor)
    this.#resume = place.kind === 'checkpoint' ? place.checkpoint : undefined
    const { start, types, ids } = this.#s
    const pageSize = this.#ctx.pageSize
    if (start.kind === 'version') {
      const [type, id] = [types[0] as string, (ids as readonly string[])[0] as string]
      this.#sequencer.expect(type, id, start.after + 1, Date.now())
      this.#catchUpFrom = () => catchUpAfterVersion(this.#ctx.log, type, id, start.after, pageSize)
    } else if (start.kind === 'time') {
      this.#after = start.after
      this.#catchUpFrom = () => catchUpAfterTime(this.#ctx.log, this.#s, start.after, pageSize)
    } else {
      // The log's clock, read after the place was taken: a change stamped at it or later comes
      // live (stamps are whole ms, so one logged in the same ms as the start is kept).
      this.#after = (await this.#ctx.log.head(types[0] as string, ids?.[0] ?? '')).now - 1
    }
    this.#pages = this.#catchUpFrom?.()
    if (this.#mode === 'starting') this.#mode = this.#pages === undefined ? 'live' : 'catch-up'
  }

  async #catchUp(): Promise<void> {
    let page: IteratorResult<ChangeRecord[], void>
    try {
      page = await (this.#pages as AsyncGenerator<ChangeRecord[], void, undefined>).next()
    } catch (error) {
      // A failed generator is finished: the retry reads the catch-up again from its start (what
      // was delivered already is dropped as duplicate).
      this.#pages = this.#catchUpFrom?.()
      throw error
    }
    if (page.done === true) {
      this.#pages = undefined
      if (this.#mode === 'catch-up') this.#mode = 'live'
      return
    }
    const now = Date.now()
    for (const r of page.value) {
      if (!this.#wanted(r)) continue
      // in the log's order an entity's first record after the time is its first version after it
      if (!this.#sequencer.known(r.entityType, r.entityId)) {
        this.#sequencer.expect(r.entityType, r.entityId, r.version, now)
      }
      this.#sequencer.offer(r, now)
    }
  }

  async #live(): Promise<void> {
    const source = this.#ctx.source
    const read =
      source.head() - this.#cursor > this.#s.bufferSize
        ? ({ kind: 'evicted' } as const)
        : source.read(this.#cursor, this.#ctx.pageSize)
    if (read.kind === 'evicted') {
      // fallen behind: leave the window, read the log's feed from where the cursor was
      this.#mode = 'resync'
      this.#counts.overflows++
      return
    }
    if (read.records.length === 0) {
      const ms = untilDue(this.#sequencer, this.#s.gapTimeout, IDLE_WAIT)
      return source.wait(this.#cursor, ms, this.#abort.signal)
    }
    this.#cursor += read.records.length
    const place = source.checkpointAt(this.#cursor)
    if (place.kind === 'checkpoint') this.#resume = place.checkpoint
    this.#offer(read.records)
    this.#lagEvent(read.records)
  }

  async #resync(): Promise<void> {
    const source = this.#ctx.source
    const head = source.head()
    const pageSize = this.#ctx.pageSize
    const batch = await this.#ctx.log.readFeed(this.#resume, pageSize)
    this.#resume = batch.checkpoint
    this.#offer(batch.records)
    if (batch.records.length >= pageSize) return
    // The feed's end was reached: every record the relay held before this read is behind us.
    const place = source.checkpointAt(head)
    if (place.kind === 'checkpoint' && source.head() - head <= this.#s.bufferSize) {
      this.#cursor = head
      this.#resume = place.checkpoint
      if (this.#mode === 'resync') this.#mode = 'live'
    }
  }

  #wanted(r: ChangeRecord): boolean {
    return this.#match(r) && (this.#after === undefined || r.timestamp > this.#after)
  }

  #offer(records: readonly ChangeRecord[]): void {
    const now = Date.now()
    for (const r of records) {
      if (!this.#wanted(r)) continue
      if (r.version === 1 && !this.#sequencer.known(r.entityType, r.entityId)) {
        this.#sequencer.expect(r.entityType, r.entityId, 1, now)
      }
      this.#sequencer.offer(r, now)
    }
  }

  #lagEvent(records: readonly ChangeRecord[]): void {
    if (!streamChannels.lag.hasSubscribers) return
    const last = records.at(-1) as ChangeRecord
    const event: StreamLagEvent = {
      subscription: this.#id,
      changes: this.#ctx.source.head() - this.#cursor,
      ms: Math.max(0, Date.now() - last.timestamp),
    }
    streamChannels.lag.publish(event)
  }

  #gapEvent(gap: OpenGap, outcome: StreamGapEvent['outcome']): void {
    if (!streamChannels.gap.hasSubscribers) return
    const event: StreamGapEvent = {
      subscription: this.#id,
      entityType: gap.entityType,
      entityId: gap.entityId,
      expected: gap.expected as number,
      outcome,
    }
    streamChannels.gap.publish(event)
  }
}

const aborted = (signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => resolve(), { once: true })
  })
