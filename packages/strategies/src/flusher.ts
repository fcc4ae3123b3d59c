import {
  type DeadLetter,
  type DeadLetterSink,
  InvalidOptionError,
  isActorCacheError,
  type QueuedWrite,
  TierUnavailableError,
  type WriteQueue,
  WriteRejectedError,
  type WriteTracking,
} from '@actor-cache/core'
import { flushWatched, publishFlush } from './events.js'
import { addToGroups, type Group, writeGroups, writeTrackedGroups } from './flush-writes.js'
import { checkOptions, type WriteBehindOptions } from './flusher-options.js'
import type { RecordStore } from './policy.js'
import { reportError } from './util.js'

/** Where the flusher persists writes of one namespace. */
export interface FlushTarget {
  record: RecordStore<unknown>
  /** The write of `key` up to `version` is in the record (may invalidate the key again). */
  flushed(key: string, version: number): Promise<void> | undefined
  /** The write of `key` at `version` was dead-lettered: drop it from the caches. */
  rejected(key: string, version: number): Promise<void>
  /** The namespace's tracking, when its writes are logged with their change records. */
  tracking?: WriteTracking | undefined
}

/** Counters of the flusher. */
export interface FlushStats {
  /** Batches persisted. */
  batches: number
  /** Queued writes acknowledged (coalesced ones included). */
  written: number
  /** Writes of the same key replaced by a newer one in the same batch. */
  coalesced: number
  /** Writes sent to the dead letters. */
  deadLettered: number
  /** Failed attempts (retried later). */
  failures: number
}

/**
 * What one batch came to:
 * - `acked`: `count` queued writes persisted and acknowledged (a namespace that failed in the same
 *   batch is retried after the backoff);
 * - `empty`: nothing was ready;
 * - `failed`: nothing was persisted; retry after the backoff;
 * - `foreign`: it held only writes of namespaces this instance lacks; the `released` deliveries
 *   went back to the queue for an instance that has them.
 */
type BatchOutcome =
  | { readonly kind: 'acked'; readonly count: number }
  | { readonly kind: 'empty' }
  | { readonly kind: 'failed' }
  | { readonly kind: 'foreign'; readonly released: number }

/** What persisting one namespace's part of a batch came to (`count`: deliveries acked). */
type NamespaceOutcome =
  | { readonly kind: 'persisted'; readonly count: number; readonly waiting?: number }
  | { readonly kind: 'failed' }
  | { readonly kind: 'foreign' }

const EMPTY: BatchOutcome = { kind: 'empty' }
const FAILED: BatchOutcome & NamespaceOutcome = { kind: 'failed' }
const FOREIGN: NamespaceOutcome = { kind: 'foreign' }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Drains a {@link WriteQueue} into stores of record: batches by size and time, keeps only the
 * newest version per key, writes each namespace's batch with one `setMany`, sets aside rows the
 * record refuses (dead letters), retries the rest with backoff. Several instances may drain the
 * same queue; versioned writes make replays and reordering harmless.
 */
export class WriteBehindFlusher {
  readonly #queue: WriteQueue<QueuedWrite>
  readonly #target: (namespace: string) => FlushTarget | undefined
  readonly #deadLetters: DeadLetterSink | undefined
  readonly #o: Required<WriteBehindOptions>
  readonly #now: () => number
  #running: Promise<void> | undefined
  #stopping = false
  #delay = 0
  #wake: (() => void) | undefined
  readonly #stats: FlushStats = {
    batches: 0,
    written: 0,
    coalesced: 0,
    deadLettered: 0,
    failures: 0,
  }

  constructor(
    queue: WriteQueue<QueuedWrite>,
    target: (namespace: string) => FlushTarget | undefined,
    deadLetters: DeadLetterSink | undefined,
    options: WriteBehindOptions,
    now: () => number,
  ) {
    this.#queue = queue
    this.#target = target
    this.#deadLetters = deadLetters
    this.#o = checkOptions(options)
    this.#now = now
  }

  get autoStart(): boolean {
    return this.#o.autoStart
  }

  stats(): FlushStats {
    return { ...this.#stats }
  }

  /** Starts the background loop (idempotent). */
  start(): void {
    if (this.#running !== undefined) return
    this.#stopping = false
    this.#running = this.#loop().finally(() => {
      this.#running = undefined
    })
  }

  /** Stops the loop after its current batch. */
  async stop(): Promise<void> {
    this.#stopping = true
    this.#wake?.()
    await this.#running
  }

  /**
   * Persists batches until the queue has nothing ready (for this consumer), or the record keeps
   * failing until `deadline`. Returns how many queued writes were acknowledged.
   */
  async drain(deadline = Number.POSITIVE_INFINITY): Promise<number> {
    // A second batch is claimed and sent while the first is being written: the record works on
    // one while the other is encoded, instead of waiting a round trip per batch. Batches are
    // disjoint claims; the same key in both is ordered by its versions, as between instances.
    const second = this.#drainReady()
    let total: number
    try {
      total = await this.#drainAll(deadline)
    } catch (error) {
      // the second drainer ends with its batch: nothing of it is left running after the throw
      await second.catch(() => undefined)
      throw error
    }
    return total + (await second)
  }

  /**
   * Persists batches while each is written whole (a full success resets the back-off delay to 0);
   * anything else (nothing ready, a failure, writes for another instance) is left to the main
   * drain, which backs off and keeps the deadline.
   */
  async #drainReady(): Promise<number> {
    let total = 0
    for (;;) {
      const outcome = await this.#batch(0)
      if (outcome.kind !== 'acked') return total
      total += outcome.count
      if (this.#delay !== 0) return total
    }
  }

  async #drainAll(deadline: number): Promise<number> {
    let total = 0
    // Writes this instance lacks the namespace of go back to the tail of the queue; once as many
    // as the queue held have gone round, everything queued before was looked at.
    let foreignLeft: number | undefined
    for (;;) {
      const outcome = await this.#batch(0)
      switch (outcome.kind) {
        case 'empty':
          return total
        case 'acked':
          total += outcome.count
          break
        case 'foreign':
          if (foreignLeft === undefined) {
            const stats = await this.#queue.stats()
            foreignLeft = stats.ready + stats.inFlight
          }
          foreignLeft -= outcome.released
          if (foreignLeft <= 0) return total
          break
        case 'failed':
          // the deadline is on the cache's clock; the wait itself is a timer
          if (this.#now() >= deadline)
            throw new TierUnavailableError('the store of record is failing; writes stay queued', {
              tier: 'write-behind',
            })
          await sleep(Math.min(this.#delay, Math.max(1, deadline - this.#now())))
          break
      }
    }
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let outcome: BatchOutcome
      try {
        outcome = await this.#batch(this.#o.interval)
      } catch (error) {
        reportError('write-behind', '', 'flush', error)
        outcome = FAILED
      }
      // after a failure, and after a batch of writes only another instance can persist
      const backOff = outcome.kind === 'failed' || outcome.kind === 'foreign'
      if (backOff && !this.#stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.#delay)
          const wake = (): void => {
            if (this.#stopping) done()
          }
          function done(): void {
            clearTimeout(timer)
            resolve()
          }
          this.#wake = wake
        })
        this.#wake = undefined
      }
    }
  }

  /** Claims one batch and persists it, namespace by namespace. */
  async #batch(blockMs: number): Promise<BatchOutcome> {
    let deliveries = await this.#queue.claim(this.#o.batchSize, { blockMs })
    if (deliveries.length === 0) return EMPTY
    if (deliveries.length < this.#o.batchSize && this.#o.linger > 0 && !this.#stopping) {
      await sleep(this.#o.linger)
      const more = await this.#queue.claim(this.#o.batchSize - deliveries.length)
      deliveries = deliveries.concat(more)
    }
    const byNamespace = new Map<string, Map<string, Group>>()
    for (const d of deliveries) if (addToGroups(byNamespace, d)) this.#stats.coalesced++
    let ok = true
    let acked = 0
    let foreign = 0
    let waiting = 0
    for (const [namespace, groups] of byNamespace) {
      const started = this.#now()
      const buried = this.#stats.deadLettered
      const r = await this.#persist(namespace, groups)
      if (r.kind !== 'foreign' && flushWatched()) {
        const at = { started, now: this.#now(), rejected: this.#stats.deadLettered - buried }
        publishFlush(namespace, groups.values(), at, r.kind === 'failed' ? 'retry' : 'persisted')
      }
      if (r.kind === 'foreign') foreign++
      else if (r.kind === 'failed') ok = false
      else {
        acked += r.count
        waiting += r.waiting ?? 0
      }
    }
    if (ok && waiting > 0 && acked === 0) {
      // tracked writes waiting for an earlier version of their key: try again after a pause
      this.#delay = Math.max(this.#o.retryBase, this.#delay)
      return FAILED
    }
    if (ok && acked === 0 && foreign > 0) {
      // only writes this instance cannot persist: leave them to another, and do not spin on them
      this.#delay = Math.max(this.#o.interval, this.#delay)
      return { kind: 'foreign', released: deliveries.length }
    }
    if (!ok) {
      this.#stats.failures++
      this.#delay = Math.min(
        this.#o.retryMax,
        this.#delay === 0 ? this.#o.retryBase : this.#delay * 2,
      )
      return acked > 0 ? { kind: 'acked', count: acked } : FAILED
    }
    this.#delay = 0
    this.#stats.batches++
    return { kind: 'acked', count: acked }
  }

  /** Persists one namespace's groups (rows the record refuses go to the dead letters). */
  async #persist(namespace: string, groups: Map<string, Group>): Promise<NamespaceOutcome> {
    const target = this.#target(namespace)
    if (target === undefined) return this.#giveBack(namespace, groups)
    let pending = [...groups.values()]
    const count = pending.reduce((n, g) => n + g.ids.length, 0)
    for (let round = 0; round < 4; round++) {
      try {
        if (target.tracking !== undefined) {
          const r = await writeTrackedGroups(this.#queue, target, pending, this.#now())
          this.#stats.written += r.count
          return { kind: 'persisted', ...r }
        }
        await writeGroups(this.#queue, target, pending)
        this.#stats.written += count
        return { kind: 'persisted', count }
      } catch (error) {
        if (!(error instanceof WriteRejectedError)) return this.#failed(namespace, pending, error)
        const refused = new Map(error.rejected.map((r) => [r.key, r.reason]))
        const poison = pending.filter((g) => refused.has(g.latest.key))
        if (poison.length === 0) return this.#failed(namespace, pending, error)
        try {
          await this.#bury(namespace, poison, (g) => refused.get(g.latest.key) ?? error.message)
        } catch (buryError) {
          return this.#failed(namespace, pending, buryError)
        }
        pending = pending.filter((g) => !refused.has(g.latest.key))
        if (pending.length === 0) return { kind: 'persisted', count }
      }
    }
    return this.#failed(namespace, pending, new Error('batch kept being refused'))
  }

  /**
   * Not a bad write: this instance lacks the namespace's config. Gives the writes back for an
   * instance that has it (never dead-lettered from here).
   */
  async #giveBack(namespace: string, groups: Map<string, Group>): Promise<NamespaceOutcome> {
    const error = `namespace "${namespace}" is not configured for write-behind on this instance`
    reportError('write-behind', namespace, 'flush', new Error(error))
    try {
      await this.#queue.release([...groups.values()].flatMap((g) => g.ids))
    } catch (releaseError) {
      reportError('write-behind', namespace, 'release', releaseError)
    }
    return FOREIGN
  }

  /** A batch failed: release it, or dead-letter writes that exhausted their attempts. */
  async #failed(namespace: string, groups: Group[], error: unknown): Promise<NamespaceOutcome> {
    reportError('write-behind', namespace, 'flush', error)
    let ids = groups.flatMap((g) => g.ids)
    const unavailable = isActorCacheError(error) && error.code === 'E_TIER_UNAVAILABLE'
    const exhausted = unavailable ? [] : groups.filter((g) => g.attempts >= this.#o.maxAttempts)
    if (exhausted.length > 0 && this.#deadLetters !== undefined) {
      try {
        await this.#bury(namespace, exhausted, () =>
          error instanceof Error ? error.message : String(error),
        )
        const gone = new Set(exhausted.flatMap((g) => g.ids))
        ids = ids.filter((id) => !gone.has(id))
      } catch (buryError) {
        reportError('write-behind', namespace, 'dead-letter', buryError)
      }
    }
    try {
      if (ids.length > 0) await this.#queue.release(ids)
    } catch (releaseError) {
      // the claim times out and the writes come back by themselves
      reportError('write-behind', namespace, 'release', releaseError)
    }
    return FAILED
  }

  /** Moves writes to the dead letters, then acks them. Without a sink they stay queued. */
  async #bury(namespace: string, groups: Group[], reason: (g: Group) => string): Promise<void> {
    if (this.#deadLetters === undefined) {
      throw new InvalidOptionError(
        'deadLetters',
        'a write was refused for good and no dead-letter sink is configured',
      )
    }
    const now = this.#now()
    const letters: DeadLetter[] = groups.map((g) => ({
      namespace,
      key: g.latest.key,
      write: g.latest,
      error: reason(g),
      attempts: g.attempts,
      firstSeen: g.latest.enqueuedAt,
      lastSeen: now,
    }))
    await this.#deadLetters.add(letters)
    await this.#queue.ack(groups.flatMap((g) => g.ids))
    this.#stats.deadLettered += groups.length
    // the caches must not keep serving a value the record will never have
    const target = this.#target(namespace)
    for (const g of groups) {
      if (target === undefined) continue
      try {
        await target.rejected(g.latest.key, g.latest.version)
      } catch (error) {
        reportError('write-behind', namespace, 'reject', error, g.latest.key)
      }
    }
  }
}
