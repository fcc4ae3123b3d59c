import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import {
  type ChangeLog,
  type ChangeTransport,
  ClosedError,
  InvalidOptionError,
  isActorCacheError,
  LeaseLostError,
  type RelayLease,
  type StreamRelayEvent,
  streamChannels,
} from '@actor-cache/core'
import { sleep } from './abortable-sleep.js'
import { checkCount } from './stream-options.js'

/** Options of {@link createChangeRelay}. */
export interface ChangeRelayOptions {
  /** The change log to publish (its ordered feed is the outbox). The caller owns it. */
  log: ChangeLog
  /** Where to publish (`createRedisChangeTransport`). The caller owns it. */
  transport: ChangeTransport
  /** This relay's id, as its lease and events name it. @default `<host>:<pid>:<random>` */
  id?: string
  /**
   * Lease lifetime (ms): how long after this relay dies another one takes over. It is renewed
   * every third of it. @default 5000
   */
  leaseTtl?: number
  /** Time between reads of the log's feed while nothing new arrives and nobody wakes it (ms). @default 50 */
  pollInterval?: number
  /** Records per read of the feed and per publish. @default 500 */
  batchSize?: number
  /** Time between trims of the streams (ms). @default 5000 */
  trimInterval?: number
}

/** What a relay is doing: waiting for the lease, publishing under it, or closed. */
export type RelayRole = 'standby' | 'leader' | 'closed'

/** Counters of a {@link ChangeRelay}. */
export interface ChangeRelayStats {
  role: RelayRole
  /** Epoch of the lease held now (leader only). */
  epoch?: number
  /** Leases taken: free ones and takeovers. */
  acquisitions: number
  /** Leases taken from a holder that let its lease expire. */
  takeovers: number
  /** Leases lost to a newer holder (or expired while this relay was paused). */
  lost: number
  /** Records published (a record published again after a takeover counts again). */
  published: number
  /** Feed reads, publishes or checkpoint saves that failed (retried after a pause). */
  errors: number
  /** Entries trimmed from the streams. */
  trimmed: number
  /** The newest error, until the next success. */
  lastError?: unknown
}

/**
 * The outbox relay of change streams across processes: it reads the change log's ordered feed
 * (which never skips a change committed late) and publishes each batch to the transport, then
 * saves the feed position after it. Run one in every process that may relay; one at a time
 * holds the transport's lease and publishes, the others stand by and take over within
 * `leaseTtl` when it dies. A relay killed between a publish and its checkpoint leaves the next
 * one to publish that batch again: subscriptions drop what they already have by (entity,
 * version), so each change is delivered once. Writes under a lost lease are refused (fencing).
 */
export class ChangeRelay {
  readonly #log: ChangeLog
  readonly #transport: ChangeTransport
  readonly #id: string
  readonly #ttl: number
  readonly #poll: number
  readonly #batch: number
  readonly #trimEvery: number
  readonly #stop = new AbortController()
  #running: Promise<void> | undefined
  #lease: RelayLease | undefined
  /** The feed position published last, kept for a transport that lost its own (restarted). */
  #checkpoint: string | undefined
  #stats: ChangeRelayStats = {
    role: 'standby',
    acquisitions: 0,
    takeovers: 0,
    lost: 0,
    published: 0,
    errors: 0,
    trimmed: 0,
  }

  constructor(options: ChangeRelayOptions) {
    const o = options as Partial<ChangeRelayOptions> | undefined
    const log = o?.log as Partial<ChangeLog> | undefined
    if (typeof log?.readFeed !== 'function') {
      throw new InvalidOptionError('log', 'must be a ChangeLog (with readFeed)')
    }
    const t = o?.transport as Partial<ChangeTransport> | undefined
    if (typeof t?.acquireRelay !== 'function' || typeof t.publish !== 'function') {
      throw new InvalidOptionError('transport', 'must be a ChangeTransport')
    }
    const id = o?.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
      throw new InvalidOptionError('id', `must be a string of 1 to 200 characters, got ${id}`)
    }
    this.#log = log as ChangeLog
    this.#transport = t as ChangeTransport
    this.#id = id
    this.#ttl = checkCount('leaseTtl', o?.leaseTtl, 5000, 600_000)
    if (this.#ttl < 100) throw new InvalidOptionError('leaseTtl', `must be at least 100 ms`)
    this.#poll = checkCount('pollInterval', o?.pollInterval, 50, 60_000)
    this.#batch = checkCount('batchSize', o?.batchSize, 500, 10_000)
    this.#trimEvery = checkCount('trimInterval', o?.trimInterval, 5000, 3_600_000)
  }

  /** This relay's id. */
  get id(): string {
    return this.#id
  }

  /**
   * Starts the relay in the background: it takes the lease when free and publishes while it
   * holds it. Idempotent.
   * @throws {ClosedError} once closed
   */
  start(): void {
    if (this.#stop.signal.aborted) throw new ClosedError('change relay')
    this.#running ??= this.#run(this.#stop.signal)
  }

  /** Counters, and whether this relay is the one publishing. */
  stats(): ChangeRelayStats {
    return { ...this.#stats, ...(this.#lease ? { epoch: this.#lease.epoch } : {}) }
  }

  /**
   * Stops: the batch in flight is finished (or abandoned on error) and the lease released, so
   * a standby takes over at once. The log and transport stay open (the caller owns them).
   */
  async close(): Promise<void> {
    this.#stop.abort()
    await this.#running
    this.#stats.role = 'closed'
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      let lease: RelayLease | undefined
      try {
        lease = await this.#transport.acquireRelay(this.#id, this.#ttl)
      } catch (error) {
        this.#fail(error)
        failures++
      }
      if (lease === undefined) {
        const pause = failures > 0 ? Math.min(2 ** failures * 50, 2000) : this.#ttl / 3
        await sleep(Math.min(pause, 1000), signal)
        continue
      }
      failures = 0
      this.#lease = lease
      this.#stats.role = 'leader'
      this.#stats.acquisitions++
      if (lease.takeover) this.#stats.takeovers++
      this.#event(lease, lease.takeover ? 'takeover' : 'acquired')
      const held = await this.#leadSafely(lease, signal)
      this.#lease = undefined
      this.#stats.role = 'standby'
      if (held) await this.#transport.releaseRelay(lease).catch(() => {})
      if (!signal.aborted && held) await sleep(Math.min(2 ** ++failures * 50, 2000), signal)
    }
  }

  /** Leads until stopped or failed; true when the lease may still be held (release it). */
  async #leadSafely(lease: RelayLease, signal: AbortSignal): Promise<boolean> {
    try {
      await this.#lead(lease, signal)
      return true
    } catch (error) {
      if (isActorCacheError(error, 'E_LEASE_LOST')) {
        this.#stats.lost++
        this.#event(lease, 'lost')
        return false
      }
      this.#fail(error)
      return true
    }
  }

  async #lead(lease: RelayLease, signal: AbortSignal): Promise<void> {
    let renewed = Date.now()
    let checkpoint = await this.#transport.loadCheckpoint()
    if (checkpoint === undefined) {
      // nothing saved (a new transport, or Redis restarted): go on from where this relay was,
      // else from the feed's end (readers re-read the log when they lose entries)
      checkpoint = this.#checkpoint ?? (await this.#feedEnd())
      await this.#transport.saveCheckpoint(lease, checkpoint)
    }
    let trimAt = Date.now() + this.#trimEvery
    while (!signal.aborted) {
      if (Date.now() - renewed >= this.#ttl / 3) {
        if (!(await this.#transport.renewRelay(lease, this.#ttl))) {
          throw new LeaseLostError('change relay', lease.epoch)
        }
        renewed = Date.now()
      }
      // listen for a wake before reading, so a change appended during the read is not slept over
      const woken = new AbortController()
      // never sleep past the next renewal, whatever the poll interval
      const ms = Math.max(1, Math.min(this.#poll, this.#ttl / 3 - (Date.now() - renewed)))
      const wake = this.#transport
        .waitForChanges(ms, AbortSignal.any([signal, woken.signal]))
        .catch(() => sleep(ms, signal))
      const batch = await this.#log.readFeed(checkpoint, this.#batch)
      if (batch.records.length > 0) {
        await this.#transport.publish(lease, batch.records)
        this.#stats.published += batch.records.length
      }
      if (batch.checkpoint !== checkpoint) {
        await this.#transport.saveCheckpoint(lease, batch.checkpoint)
        checkpoint = batch.checkpoint
        this.#checkpoint = checkpoint
      }
      delete this.#stats.lastError
      if (Date.now() >= trimAt) {
        trimAt = Date.now() + this.#trimEvery
        await this.#trim()
      }
      if (batch.records.length >= this.#batch) woken.abort()
      await wake
    }
  }

  async #trim(): Promise<void> {
    try {
      this.#stats.trimmed += (await this.#transport.trim()).trimmed
    } catch (error) {
      this.#fail(error)
    }
  }

  /** A checkpoint after everything the feed holds now. */
  async #feedEnd(): Promise<string> {
    if (this.#log.feedEnd !== undefined) return this.#log.feedEnd()
    let checkpoint: string | undefined
    for (;;) {
      const batch = await this.#log.readFeed(checkpoint, 10_000)
      checkpoint = batch.checkpoint
      if (batch.records.length < 10_000) return checkpoint
    }
  }

  #fail(error: unknown): void {
    this.#stats.errors++
    this.#stats.lastError = error
  }

  #event(lease: RelayLease, outcome: StreamRelayEvent['outcome']): void {
    if (!streamChannels.relay.hasSubscribers) return
    const event: StreamRelayEvent = { owner: this.#id, epoch: lease.epoch, outcome }
    streamChannels.relay.publish(event)
  }
}

/** Creates a {@link ChangeRelay}; call `start()` to run it. */
export function createChangeRelay(options: ChangeRelayOptions): ChangeRelay {
  return new ChangeRelay(options)
}
