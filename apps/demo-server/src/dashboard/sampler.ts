import type { ActiveAlert } from '@actor-cache/metrics'
import { type AuditRecord, maskRecord } from '../domain/audit.js'
import type { Stack } from '../stack.js'
import { ChangeTail } from './change-tail.js'
import {
  bucketDelta,
  type Counters,
  type HitRatios,
  hitRatios,
  type Percentiles,
  percentiles,
  readCounters,
} from './readings.js'

/** State of a tier's circuit breaker; `none` where the tier has none (in-process, PostgreSQL). */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'none'

/** What the dashboard's event stream sends once a second. */
export interface Snapshot {
  /** When it was taken (epoch ms). */
  at: number
  tiers: Stack['tiers']
  /** Since the previous snapshot, and since the server started. */
  hitRatio: { interval: HitRatios; total: HitRatios }
  /** Durations of set, delete and loader calls (L1 hits are not timed), in ms. */
  latency: { interval: Percentiles; total: Percentiles }
  evictions: { total: number; byTier: Record<string, number>; expirations: number }
  writeBehind: {
    ready: number
    inFlight: number
    capacity: number
    flushes: number
    /** Flush lag (age of a batch's oldest write when it was persisted), in ms. */
    lag: { interval: Percentiles; total: Percentiles }
  }
  circuit: { l2: CircuitState }
  /** Alerts whose condition holds: firing, or pending until it has held for its `for`. */
  alerts: ActiveAlert[]
  /** The newest change records of the log, oldest first, sensitive fields masked. */
  changes: AuditRecord[]
}

/** Options of {@link DashboardSampler}. */
export interface SamplerOptions {
  /** @default 1000 */
  intervalMs?: number
  /** Change records per snapshot. @default 20 */
  changes?: number
  /** Told when a snapshot fails (the next tick tries again). @default none */
  onError?: (error: unknown) => void
}

type Listener = (snapshot: Snapshot) => void

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0)

/**
 * Takes a snapshot of the stack once a second while someone listens, and hands it to every
 * listener: one reading of the metrics and the log however many pages are open. The timer runs
 * only while there are listeners and never keeps the process alive.
 */
export class DashboardSampler {
  readonly #stack: Stack
  readonly #interval: number
  readonly #tail: ChangeTail
  readonly #onError: (error: unknown) => void
  readonly #listeners = new Set<Listener>()
  #timer: NodeJS.Timeout | undefined
  #running = false
  #previous: Counters | undefined
  #last: Snapshot | undefined

  constructor(stack: Stack, options: SamplerOptions = {}) {
    this.#stack = stack
    this.#interval = options.intervalMs ?? 1000
    this.#tail = new ChangeTail(stack.tracker, options.changes ?? 20)
    this.#onError = options.onError ?? (() => {})
  }

  /** Listens; the last snapshot (if any) is handed over at once. Returns the unsubscribe. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener)
    if (this.#last !== undefined) listener(this.#last)
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.#tick(), this.#interval)
      this.#timer.unref()
      void this.#tick()
    }
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) this.#stop()
    }
  }

  /** Forgets every listener and stops the timer. */
  close(): void {
    this.#listeners.clear()
    this.#stop()
  }

  /** One snapshot, now (the interval figures are since the previous one). */
  async take(): Promise<Snapshot> {
    const stack = this.#stack
    const [now, records] = await Promise.all([
      readCounters(stack.metrics.registry),
      this.#tail.latest(),
    ])
    const before = this.#previous
    this.#previous = now
    const audit = stack.settings.demo.audit
    return {
      at: Date.now(),
      tiers: stack.tiers,
      hitRatio: { interval: hitRatios(now, before), total: hitRatios(now, undefined) },
      latency: {
        interval: percentiles(bucketDelta(now.operations, before?.operations)),
        total: percentiles(now.operations),
      },
      evictions: {
        total: sum(now.evictions),
        byTier: now.evictions,
        expirations: sum(now.expirations),
      },
      writeBehind: {
        ...now.queue,
        flushes: now.flushes,
        lag: {
          interval: percentiles(bucketDelta(now.flushLag, before?.flushLag)),
          total: percentiles(now.flushLag),
        },
      },
      circuit: { l2: stack.shared.redisTier?.breakerState ?? 'none' },
      alerts: stack.alerts?.active() ?? [],
      changes: records.map((r) => maskRecord(r, audit)),
    }
  }

  async #tick(): Promise<void> {
    // a slow reading (a busy database) skips ticks rather than piling them up
    if (this.#running) return
    this.#running = true
    try {
      const snapshot = await this.take()
      if (this.#listeners.size === 0) return
      this.#last = snapshot
      for (const listener of this.#listeners) listener(snapshot)
    } catch (error) {
      // the next tick tries again; the stream stays open (the page shows the snapshot's age)
      this.#onError(error)
    } finally {
      this.#running = false
    }
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#last = undefined
    this.#previous = undefined
  }
}
