import { InvalidOptionError } from '@actor-cache/core'
import { DEFAULT_DURATION_BUCKETS, EventCollector, type Observer } from './event-collector.js'
import { DEFAULT_TIERS, NamespaceLabels } from './labels.js'
import type { MemoryTierSource, QueueSource, TieredCacheSource } from './sources.js'

/**
 * What both exporters (`createCacheMetrics` for Prometheus, `createOtelMetrics` of
 * `@actor-cache/metrics/otel`) count and where they read it from.
 */
export interface MetricsSourceOptions {
  /**
   * Namespaces that get their own `namespace` label value; every other one is counted under
   * `_other`. Without a list, the first `maxNamespaces` namespaces seen keep their name.
   */
  namespaces?: readonly string[]
  /** Namespaces labelled by name when `namespaces` is not given. @default 50 */
  maxNamespaces?: number
  /**
   * Tier label of each store name (the `tier` of a store's events).
   * @default { memory: 'l1', redis: 'l2', postgres: 'l3' }
   */
  tiers?: Readonly<Record<string, string>>
  /** Buckets, in seconds, of the duration histograms. @default 0.5 ms to 10 s */
  buckets?: readonly number[]
  /**
   * Also count every store hit, miss, set and delete per tier, with durations. Each store call
   * then publishes an event, L1 hits included: leave it off where L1 hits are the hot path.
   * @default false
   */
  storeEvents?: boolean
  /**
   * Also count the change streams' events (`@actor-cache/state-tracker`): subscription lag
   * (a histogram of seconds and one of changes, per delivered batch), gaps by outcome and those
   * unresolved now, relay leases by outcome. Turn it on in processes that subscribe to change
   * streams or run a relay. @default false
   */
  streamEvents?: boolean
  /**
   * A tiered cache whose `stats()` are read at scrape time: its hits (unless `hitEvents`),
   * negative hits and write-behind counters.
   */
  cache?: TieredCacheSource
  /**
   * Count hits from the `actor-cache:tiered:hit` events, per level the cache reports. Every L1
   * hit then publishes an event; without them (the default when `cache` is given) the hits come
   * from `cache.stats()` at scrape time, free on the hit path, with L2, L3 used as a cache and
   * unflushed writes together under `tier="l2"`. Hits of other caches of the process are then not
   * counted. @default true without `cache`, false with it
   */
  hitEvents?: boolean
  /** An L1 store whose `stats()` are read at scrape time (bytes, entries, budget). */
  l1?: MemoryTierSource
  /** The write-behind queue whose depth is read at scrape time. */
  queue?: QueueSource
}

/** Where the collector's histogram observations also go (the exporter's histograms). */
export interface HistogramObservers {
  readonly operation: Observer
  readonly flushLag: Observer
  readonly flushBatch: Observer
  /** Only called with `storeEvents`. */
  readonly store: Observer
  /** Only called with `streamEvents`. */
  readonly streamLag: Observer
  /** Only called with `streamEvents`. */
  readonly streamLagChanges: Observer
}

/** An event collector set up from the options, and how to bring its hit counters up to date. */
export interface MetricSources {
  readonly collector: EventCollector
  readonly labels: NamespaceLabels
  readonly buckets: readonly number[]
  readonly storeEvents: boolean
  readonly streamEvents: boolean
  /** Brings the hit and read counters up to date (batched hit events, or the cache's stats). */
  readonly sync: () => void
}

/** The buckets option, or the default duration buckets. */
export function durationBuckets(o: MetricsSourceOptions): readonly number[] {
  return o.buckets ?? DEFAULT_DURATION_BUCKETS
}

/**
 * Subscribes an {@link EventCollector} (its `close()` unsubscribes) as the options say; the
 * caller validated them with {@link validateSourceOptions}. Hits before this call are not counted.
 */
export function createMetricSources(
  o: MetricsSourceOptions,
  observers: HistogramObservers,
): MetricSources {
  const labels = new NamespaceLabels(o.namespaces, o.maxNamespaces ?? 50)
  const cache = o.cache
  const hitEvents = o.hitEvents ?? cache === undefined
  const storeEvents = o.storeEvents ?? false
  const streamEvents = o.streamEvents ?? false
  const buckets = durationBuckets(o)
  const collector = new EventCollector({
    namespaces: labels,
    tiers: { ...DEFAULT_TIERS, ...o.tiers },
    durationBuckets: buckets,
    storeEvents,
    hitEvents,
    streamEvents,
    observers,
  })
  const sync =
    hitEvents || cache === undefined
      ? () => collector.flushHits()
      : () => collector.syncHits(cache.stats().namespaces)
  sync() // the baseline: hits before now are not counted
  return { collector, labels, buckets, storeEvents, streamEvents, sync }
}

/** Checks the options shared by both exporters, naming the option and the value. */
export function validateSourceOptions(o: MetricsSourceOptions): void {
  if (typeof o !== 'object' || o === null) {
    throw new InvalidOptionError('options', 'must be an object')
  }
  if (o.hitEvents === false && o.cache === undefined) {
    throw new InvalidOptionError('hitEvents', 'false needs cache (its stats count the hits)')
  }
  if (
    o.namespaces !== undefined &&
    (!Array.isArray(o.namespaces) || o.namespaces.some((n) => typeof n !== 'string'))
  ) {
    throw new InvalidOptionError('namespaces', 'must be a list of namespace names')
  }
  if (
    o.maxNamespaces !== undefined &&
    (!Number.isSafeInteger(o.maxNamespaces) || o.maxNamespaces < 0)
  ) {
    throw new InvalidOptionError(
      'maxNamespaces',
      `must be a non-negative integer, got ${String(o.maxNamespaces)}`,
    )
  }
  if (o.buckets !== undefined && !increasingPositive(o.buckets)) {
    throw new InvalidOptionError('buckets', 'must be increasing positive numbers of seconds')
  }
  for (const name of ['cache', 'l1', 'queue'] as const) {
    const source = o[name] as { stats?: unknown } | undefined
    if (source !== undefined && typeof source?.stats !== 'function') {
      throw new InvalidOptionError(name, 'must have a stats method')
    }
  }
}

function increasingPositive(b: readonly number[]): boolean {
  return (
    Array.isArray(b) &&
    b.length > 0 &&
    b.every(
      (v, i) =>
        typeof v === 'number' &&
        v > 0 &&
        Number.isFinite(v) &&
        (i === 0 || v > (b[i - 1] as number)),
    )
  )
}
