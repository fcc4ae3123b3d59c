import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  type CacheEvent,
  CHANNELS,
  STREAM_CHANNELS,
  type StreamGapEvent,
  type StreamLagEvent,
  type StreamRelayEvent,
  TIERED_CHANNELS,
  type TieredFlushEvent,
  type TieredHitEvent,
  type TieredInvalidateEvent,
  type TieredKeyEvent,
  type TieredLoadEvent,
  type TieredWriteEvent,
} from '@actor-cache/core'
import { errorCode, type NamespaceLabels } from './labels.js'
import { BucketTable, CounterTable, type Series } from './tables.js'

/** Where histogram observations also go (prom-client's histogram, for the exposition). */
export type Observer = (labels: readonly string[], value: number) => void

/** Histogram buckets, in seconds, of operation durations. @internal */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]
/** Histogram buckets, in seconds, of the write-behind flush lag. */
export const LAG_BUCKETS: readonly number[] = [
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
]
/** Histogram buckets of the write-behind batch size (writes). */
export const BATCH_BUCKETS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
/** Histogram buckets, in seconds, of a change-stream subscription's lag (commit to delivery). */
export const STREAM_LAG_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
]
/** Histogram buckets of a subscription's lag in changes (held by the source, not taken yet). */
export const STREAM_LAG_CHANGE_BUCKETS: readonly number[] = [
  0, 1, 10, 100, 1000, 10_000, 100_000, 1_000_000,
]

export interface CollectorOptions {
  readonly namespaces: NamespaceLabels
  /** Store name to tier label. */
  readonly tiers: Readonly<Record<string, string>>
  readonly durationBuckets: readonly number[]
  /** Also count store operations (every store hit, miss, set and delete: one event per call). */
  readonly storeEvents: boolean
  /** Count hits from the hit events; when false, {@link EventCollector.syncHits} counts them. */
  readonly hitEvents: boolean
  /** Also count change-stream events: subscription lag, gaps, relay leases. */
  readonly streamEvents: boolean
  readonly observers: {
    readonly operation: Observer
    readonly flushLag: Observer
    readonly flushBatch: Observer
    readonly store: Observer
    readonly streamLag: Observer
    readonly streamLagChanges: Observer
  }
}

/** The hit counters of a tiered cache's namespace (`NamespaceStats`). */
export interface HitCounters {
  readonly l1Hits: number
  readonly lowerHits: number
  readonly recordHits: number
}

/**
 * What the collector keeps per namespace label for the read path. The hit handler only bumps the
 * plain fields (no lookup, no allocation); {@link EventCollector.flushHits} moves them into the
 * tables when someone reads them.
 */
interface NamespaceState {
  readonly label: string
  readonly reads: Series
  readonly misses: Series
  /** Hits by level since the last flush. */
  l1: number
  l2: number
  l3: number
  record: number
  unflushed: number
  /** Hits of levels this version does not know, since the last flush. */
  other: Map<string, number> | undefined
}

/**
 * Subscribes to the tiered and store events and keeps what they say as plain counters and bucket
 * tables. Handlers do a few map lookups and increments; nothing waits on them.
 */
export class EventCollector {
  readonly reads = new CounterTable(['namespace'])
  readonly hits = new CounterTable(['namespace', 'tier'])
  readonly misses = new CounterTable(['namespace'])
  readonly loads = new CounterTable(['namespace', 'purpose', 'outcome'])
  readonly stale = new CounterTable(['namespace'])
  readonly refreshes = new CounterTable(['namespace'])
  readonly writes = new CounterTable(['namespace', 'operation', 'strategy', 'outcome'])
  readonly invalidations = new CounterTable(['namespace', 'origin', 'kind'])
  readonly flushes = new CounterTable(['namespace', 'outcome'])
  readonly flushedWrites = new CounterTable(['namespace', 'outcome'])
  readonly flushRejected = new CounterTable(['namespace'])
  readonly evictions = new CounterTable(['tier', 'namespace'])
  readonly expirations = new CounterTable(['tier', 'namespace'])
  readonly errors = new CounterTable(['tier', 'namespace', 'code'])
  readonly storeOperations = new CounterTable(['tier', 'namespace', 'operation', 'result'])
  /** Change-stream gaps by outcome: detected, backfilled, unresolved (a backfill left it open), abandoned. */
  readonly streamGaps = new CounterTable(['outcome'])
  /** Change-stream relay leases by outcome: acquired, takeover, lost. */
  readonly relayLeases = new CounterTable(['outcome'])
  /** Durations (seconds) of tiered operations: set, delete, load, load_many, refresh. */
  readonly operationDurations: BucketTable

  readonly #options: CollectorOptions
  /** Namespace name to its state (a bounded memo); states themselves are kept per label. */
  readonly #state = new Map<string, NamespaceState>()
  readonly #byLabel = new Map<string, NamespaceState>()
  /** The namespace of the previous hit: consecutive hits of one namespace skip every lookup. */
  #lastName: string | undefined
  #last: NamespaceState | undefined
  #lastHits: Map<string, HitCounters> | undefined
  readonly #subscriptions: [string, (message: unknown) => void][] = []
  /** Gaps a backfill left open and no later one closed yet: subscription, entity type and id. */
  readonly #unresolved = new Set<string>()
  #closed = false

  constructor(options: CollectorOptions) {
    this.#options = options
    this.operationDurations = new BucketTable(['namespace', 'operation'], options.durationBuckets)
    const on = (name: string, fn: (message: unknown) => void) => {
      subscribe(name, fn)
      this.#subscriptions.push([name, fn])
    }
    if (options.hitEvents) on(TIERED_CHANNELS.hit, (m) => this.#hit(m as TieredHitEvent))
    on(TIERED_CHANNELS.miss, (m) => this.#miss(m as TieredKeyEvent))
    on(TIERED_CHANNELS.load, (m) => this.#load(m as TieredLoadEvent))
    on(TIERED_CHANNELS.stale, (m) => this.stale.inc([this.#ns((m as TieredKeyEvent).namespace)]))
    on(TIERED_CHANNELS.refresh, (m) =>
      this.refreshes.inc([this.#ns((m as TieredKeyEvent).namespace)]),
    )
    on(TIERED_CHANNELS.write, (m) => this.#write(m as TieredWriteEvent))
    on(TIERED_CHANNELS.invalidate, (m) => this.#invalidate(m as TieredInvalidateEvent))
    on(TIERED_CHANNELS.flush, (m) => this.#flush(m as TieredFlushEvent))
    on(CHANNELS.evict, (m) => this.#dropped(this.evictions, m as CacheEvent))
    on(CHANNELS.expire, (m) => this.#dropped(this.expirations, m as CacheEvent))
    on(CHANNELS.error, (m) => this.#error(m as CacheEvent))
    if (options.storeEvents) {
      on(CHANNELS.hit, (m) => this.#store(m as CacheEvent, 'get', 'hit'))
      on(CHANNELS.miss, (m) => this.#store(m as CacheEvent, 'get', 'miss'))
      on(CHANNELS.set, (m) => {
        const e = m as CacheEvent
        this.#store(e, 'set', e.applied === false ? 'ignored' : 'applied')
      })
      on(CHANNELS.delete, (m) => this.#store(m as CacheEvent, 'delete', 'applied'))
    }
    if (options.streamEvents) {
      on(STREAM_CHANNELS.lag, (m) => this.#lag(m as StreamLagEvent))
      on(STREAM_CHANNELS.gap, (m) => this.#gap(m as StreamGapEvent))
      on(STREAM_CHANNELS.relay, (m) => this.relayLeases.inc([(m as StreamRelayEvent).outcome]))
    }
  }

  /** Change-stream gaps open now that a backfill did not close (0 when all is well). */
  get gapsUnresolved(): number {
    return this.#unresolved.size
  }

  /**
   * Counts the hits a tiered cache counted since the last call (the first call only takes the
   * baseline): L1 hits as `l1`, lower cache tiers (L2, L3 as a cache, unflushed writes) as `l2`,
   * the store of record as `record`. Used instead of the hit events, which every L1 hit would pay for.
   */
  syncHits(namespaces: Readonly<Record<string, HitCounters>>): void {
    const first = this.#lastHits === undefined
    const last = this.#lastHits ?? new Map<string, HitCounters>()
    this.#lastHits = last
    for (const [name, s] of Object.entries(namespaces)) {
      const before = last.get(name)
      last.set(name, { l1Hits: s.l1Hits, lowerHits: s.lowerHits, recordHits: s.recordHits })
      if (first) continue
      const state = this.#namespace(name)
      const delta = (now: number, then: number | undefined) =>
        then === undefined ? now : now >= then ? now - then : now
      const add = (tier: string, n: number) => {
        if (n === 0) return
        this.hits.inc([state.label, tier], n)
        state.reads.value += n
      }
      add('l1', delta(s.l1Hits, before?.l1Hits))
      add('l2', delta(s.lowerHits, before?.lowerHits))
      add('record', delta(s.recordHits, before?.recordHits))
    }
  }

  /**
   * Moves the hits counted since the last call into {@link hits} and {@link reads}. Everything
   * that reads those tables calls it first (the metrics' `collect`, the alerts).
   */
  flushHits(): void {
    for (const s of this.#byLabel.values()) {
      const total = s.l1 + s.l2 + s.l3 + s.record + s.unflushed
      if (total > 0) {
        if (s.l1 > 0) this.hits.inc([s.label, 'l1'], s.l1)
        if (s.l2 > 0) this.hits.inc([s.label, 'l2'], s.l2)
        if (s.l3 > 0) this.hits.inc([s.label, 'l3'], s.l3)
        if (s.record > 0) this.hits.inc([s.label, 'record'], s.record)
        if (s.unflushed > 0) this.hits.inc([s.label, 'unflushed'], s.unflushed)
        s.reads.value += total
        s.l1 = s.l2 = s.l3 = s.record = s.unflushed = 0
      }
      if (s.other !== undefined) {
        for (const [level, n] of s.other) {
          this.hits.inc([s.label, level], n)
          s.reads.value += n
        }
        s.other = undefined
      }
    }
  }

  /** The tier label of a store name. */
  tier(store: string): string {
    return this.#options.tiers[store] ?? store
  }

  /** Unsubscribes from every channel it subscribed to. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const [name, fn] of this.#subscriptions.splice(0)) unsubscribe(name, fn)
  }

  #ns(namespace: string): string {
    return this.#options.namespaces.label(namespace)
  }

  #namespace(name: string): NamespaceState {
    let s = this.#state.get(name)
    if (s === undefined) {
      const label = this.#ns(name)
      s = this.#byLabel.get(label)
      if (s === undefined) {
        s = {
          label,
          reads: this.reads.series([label]),
          misses: this.misses.series([label]),
          l1: 0,
          l2: 0,
          l3: 0,
          record: 0,
          unflushed: 0,
          other: undefined,
        }
        // labels are bounded (configured namespaces, or the first maxNamespaces, and _other)
        this.#byLabel.set(label, s)
      }
      // names are remembered up to a bound; past it each new name takes the label lookup again
      if (this.#state.size < 10_000) this.#state.set(name, s)
    }
    return s
  }

  #hit(e: TieredHitEvent): void {
    let s = this.#last
    if (s === undefined || e.namespace !== this.#lastName) {
      s = this.#namespace(e.namespace)
      this.#lastName = e.namespace
      this.#last = s
    }
    // the level the cache reports (l1, l2, l3, record, unflushed), not the store's name: two
    // tiers may be the same kind of store
    switch (e.level) {
      case 'l1':
        s.l1++
        break
      case 'l2':
        s.l2++
        break
      case 'l3':
        s.l3++
        break
      case 'record':
        s.record++
        break
      case 'unflushed':
        s.unflushed++
        break
      default: {
        s.other ??= new Map()
        s.other.set(e.level, (s.other.get(e.level) ?? 0) + 1)
      }
    }
  }

  #miss(e: TieredKeyEvent): void {
    const s = this.#namespace(e.namespace)
    s.reads.value++
    s.misses.value++
  }

  #load(e: TieredLoadEvent): void {
    const ns = this.#ns(e.namespace)
    this.loads.inc([ns, e.purpose, e.outcome])
    // a read answered by its loader; one that found nothing is counted by its miss event (a
    // batch load's event does not say how many of its keys it found: its reads are not counted)
    if (e.purpose === 'read' && e.outcome === 'value' && e.count === undefined) {
      this.#namespace(e.namespace).reads.value++
    }
    const operation =
      e.purpose === 'refresh' ? 'refresh' : e.count === undefined ? 'load' : 'load_many'
    this.#observeOperation([ns, operation], e.durationMs)
  }

  #write(e: TieredWriteEvent): void {
    const ns = this.#ns(e.namespace)
    this.writes.inc([ns, e.operation, e.strategy, e.outcome])
    this.#observeOperation([ns, e.operation], e.durationMs)
  }

  #observeOperation(labels: readonly string[], durationMs: number): void {
    const seconds = Math.max(0, durationMs) / 1000
    this.operationDurations.observe(labels, seconds)
    this.#options.observers.operation(labels, seconds)
  }

  #invalidate(e: TieredInvalidateEvent): void {
    const ns = this.#ns(e.namespace)
    let any = false
    for (const kind of ['keys', 'patterns', 'tags'] as const) {
      if (e[kind] !== undefined) {
        this.invalidations.inc([ns, e.origin, kind])
        any = true
      }
    }
    if (e.all === true || !any) this.invalidations.inc([ns, e.origin, 'all'])
  }

  #flush(e: TieredFlushEvent): void {
    const ns = this.#ns(e.namespace)
    this.flushes.inc([ns, e.outcome])
    this.flushedWrites.inc([ns, e.outcome], e.count)
    if (e.rejected > 0) this.flushRejected.inc([ns], e.rejected)
    this.#options.observers.flushLag([ns], Math.max(0, e.lagMs) / 1000)
    this.#options.observers.flushBatch([ns], e.count)
  }

  #dropped(table: CounterTable, e: CacheEvent): void {
    table.inc([this.tier(e.tier), this.#ns(e.namespace)], e.count ?? 1)
  }

  #error(e: CacheEvent): void {
    this.errors.inc([this.tier(e.tier), this.#ns(e.namespace), errorCode(e.error)])
  }

  #lag(e: StreamLagEvent): void {
    this.#options.observers.streamLag([], Math.max(0, e.ms) / 1000)
    this.#options.observers.streamLagChanges([], Math.max(0, e.changes))
  }

  #gap(e: StreamGapEvent): void {
    this.streamGaps.inc([e.outcome])
    // a gap is reported unresolved once, and backfilled when it closes (whether or not it was),
    // or abandoned when its subscription closes with it open
    const key = `${e.subscription}\u0000${e.entityType}\u0000${e.entityId}`
    if (e.outcome === 'unresolved') this.#unresolved.add(key)
    else if (e.outcome === 'backfilled' || e.outcome === 'abandoned') this.#unresolved.delete(key)
  }

  #store(e: CacheEvent, operation: string, result: string): void {
    const tier = this.tier(e.tier)
    this.storeOperations.inc([tier, this.#ns(e.namespace), operation, result], e.count ?? 1)
    if (e.durationMs > 0) this.#options.observers.store([tier, operation], e.durationMs / 1000)
  }
}
