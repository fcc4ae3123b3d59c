import {
  BATCH_BUCKETS,
  type EventCollector,
  LAG_BUCKETS,
  STREAM_LAG_BUCKETS,
  STREAM_LAG_CHANGE_BUCKETS,
} from './event-collector.js'
import type { NamespaceLabels } from './labels.js'
import type { HistogramObservers } from './metric-sources.js'
import type { MemoryTierSource, QueueSource, TieredCacheSource } from './sources.js'
import type { CounterTable } from './tables.js'

/**
 * The series both exporters publish, described once: Prometheus names them `<prefix><name>_total`
 * (counters), OpenTelemetry `<prefix><name>`.
 */
export interface CounterSpec {
  readonly name: string
  readonly help: string
  readonly table: (c: EventCollector) => CounterTable
  /** Only with `storeEvents`. */
  readonly storeEvents?: true
  /** Only with `streamEvents`. */
  readonly streamEvents?: true
}

/** Counters read from the event collector's tables. */
export const COUNTERS: readonly CounterSpec[] = [
  {
    name: 'reads',
    help: 'Reads answered: hits, misses and single-key loader values.',
    table: (c) => c.reads,
  },
  {
    name: 'hits',
    help: 'Reads answered by a tier (record: the store of record).',
    table: (c) => c.hits,
  },
  {
    name: 'misses',
    help: 'Reads that found nothing anywhere, loader included.',
    table: (c) => c.misses,
  },
  {
    name: 'loads',
    help: 'Loader calls by purpose (read, refresh) and outcome.',
    table: (c) => c.loads,
  },
  {
    name: 'stale_served',
    help: 'Copies past their TTL served within grace.',
    table: (c) => c.stale,
  },
  { name: 'refreshes', help: 'Refresh-ahead runs started.', table: (c) => c.refreshes },
  { name: 'writes', help: 'Sets and deletes by strategy and outcome.', table: (c) => c.writes },
  {
    name: 'invalidations',
    help: 'Invalidations applied, by origin and kind.',
    table: (c) => c.invalidations,
  },
  {
    name: 'flushes',
    help: 'Write-behind batches handled per namespace, by outcome.',
    table: (c) => c.flushes,
  },
  {
    name: 'flushed_writes',
    help: 'Writes in write-behind batches, by outcome.',
    table: (c) => c.flushedWrites,
  },
  {
    name: 'flush_rejected',
    help: 'Writes the record refused for good.',
    table: (c) => c.flushRejected,
  },
  { name: 'evictions', help: 'Entries evicted for size limits.', table: (c) => c.evictions },
  {
    name: 'expirations',
    help: 'Entries dropped because their TTL passed.',
    table: (c) => c.expirations,
  },
  {
    name: 'errors',
    help: 'Errors of tiers, loaders and ports, by error code.',
    table: (c) => c.errors,
  },
  {
    name: 'store_operations',
    help: 'Store calls by tier and result.',
    table: (c) => c.storeOperations,
    storeEvents: true,
  },
  {
    name: 'stream_gaps',
    help: 'Change-stream version gaps by outcome: detected, backfilled (closed by a read of the log), unresolved (a backfill left it open), abandoned (its subscription closed while it was open).',
    table: (c) => c.streamGaps,
    streamEvents: true,
  },
  {
    name: 'stream_relay_leases',
    help: 'Change-stream relay leases by outcome: acquired (free), takeover (from a holder that let it expire), lost (to a newer holder).',
    table: (c) => c.relayLeases,
    streamEvents: true,
  },
]

/**
 * A histogram fed by the collector's observers. Prometheus names it `<prefix><name>` + the unit
 * suffix (`_seconds`); OpenTelemetry `<prefix><name>` with the unit.
 */
export interface HistogramSpec {
  readonly observer: keyof HistogramObservers
  readonly name: string
  readonly unit: 's' | '{write}' | '{change}'
  readonly help: string
  readonly labelNames: readonly string[]
  /** Fixed buckets; the duration histograms take the `buckets` option. */
  readonly buckets?: readonly number[]
  readonly storeEvents?: true
  readonly streamEvents?: true
}

/** The histograms, in seconds or writes. */
export const HISTOGRAMS: readonly HistogramSpec[] = [
  {
    observer: 'operation',
    name: 'operation_duration',
    unit: 's',
    help: 'Duration of tiered operations: set, delete, load (a loader call for a read), load_many, refresh.',
    labelNames: ['namespace', 'operation'],
  },
  {
    observer: 'flushLag',
    name: 'flush_lag',
    unit: 's',
    help: 'Age of the oldest write of a write-behind batch when the batch ended.',
    labelNames: ['namespace'],
    buckets: LAG_BUCKETS,
  },
  {
    observer: 'flushBatch',
    name: 'flush_batch_size',
    unit: '{write}',
    help: 'Writes per namespace in a write-behind batch.',
    labelNames: ['namespace'],
    buckets: BATCH_BUCKETS,
  },
  {
    observer: 'store',
    name: 'store_operation_duration',
    unit: 's',
    help: 'Duration of store calls that measure it, by tier and operation.',
    labelNames: ['tier', 'operation'],
    storeEvents: true,
  },
  {
    observer: 'streamLag',
    name: 'stream_lag',
    unit: 's',
    help: 'Change-stream consumer lag: age of the newest change a subscription delivered, per batch (its clock minus the log stamp).',
    labelNames: [],
    buckets: STREAM_LAG_BUCKETS,
    streamEvents: true,
  },
  {
    observer: 'streamLagChanges',
    name: 'stream_lag_changes',
    unit: '{change}',
    help: 'Change-stream consumer lag: changes the source held that the subscription had not taken, per delivered batch.',
    labelNames: [],
    buckets: STREAM_LAG_CHANGE_BUCKETS,
    streamEvents: true,
  },
]

/** One value of a series read at scrape time. */
export interface Reading {
  readonly labels: Record<string, string>
  readonly value: number
}

/** Hits / reads since start per namespace: `overall`, `l1`, and `l2` of the reads L1 missed. */
export function hitRatioReadings(c: EventCollector): Reading[] {
  const out: Reading[] = []
  for (const s of c.reads.values()) {
    const [namespace] = s.labels as [string]
    const reads = s.value
    if (reads === 0) continue
    const all = c.hits.sum({ name: 'namespace', value: namespace })
    const l1 = hitsOf(c.hits, namespace, 'l1')
    out.push({ labels: { namespace, level: 'overall' }, value: all / reads })
    out.push({ labels: { namespace, level: 'l1' }, value: l1 / reads })
    if (reads > l1) {
      out.push({
        labels: { namespace, level: 'l2' },
        value: hitsOf(c.hits, namespace, 'l2') / (reads - l1),
      })
    }
  }
  return out
}

function hitsOf(hits: CounterTable, namespace: string, tier: string): number {
  let n = 0
  for (const s of hits.values()) if (s.labels[0] === namespace && s.labels[1] === tier) n += s.value
  return n
}

type WriteBehindStats = NonNullable<ReturnType<TieredCacheSource['stats']>['writeBehind']>

/** A counter read from `cache.stats()` at scrape time. */
export interface StatsCounterSpec {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly read: (cache: TieredCacheSource, labels: NamespaceLabels) => Reading[]
}

const writeBehind =
  (key: keyof WriteBehindStats) =>
  (cache: TieredCacheSource): Reading[] => {
    const wb = cache.stats().writeBehind
    return wb === undefined ? [] : [{ labels: {}, value: wb[key] }]
  }

/** The counters read from the cache's `stats()`. */
export const STATS_COUNTERS: readonly StatsCounterSpec[] = [
  {
    name: 'negative_hits',
    labelNames: ['namespace'],
    help: 'Reads answered by the negative cache.',
    read: (cache, labels) =>
      Object.entries(cache.stats().namespaces).map(([ns, s]) => ({
        labels: { namespace: labels.label(ns) },
        value: s.negativeHits,
      })),
  },
  {
    name: 'write_behind_batches',
    labelNames: [],
    help: 'Write-behind batches persisted.',
    read: writeBehind('batches'),
  },
  {
    name: 'write_behind_coalesced',
    labelNames: [],
    help: 'Writes replaced by a newer one in a batch.',
    read: writeBehind('coalesced'),
  },
  {
    name: 'write_behind_dead_lettered',
    labelNames: [],
    help: 'Writes sent to the dead letters.',
    read: writeBehind('deadLettered'),
  },
  {
    name: 'write_behind_failures',
    labelNames: [],
    help: 'Failed write-behind attempts (retried).',
    read: writeBehind('failures'),
  },
]

/** A gauge read at scrape time from the L1 store or the queue. */
export interface GaugeSpec<S> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly read: (source: S) => Reading[] | Promise<Reading[]>
}

/** Gauges of the L1 store. */
export const L1_GAUGES: readonly GaugeSpec<MemoryTierSource>[] = [
  {
    name: 'l1_bytes',
    labelNames: [],
    help: 'Estimated bytes held by L1.',
    read: (l1) => [{ labels: {}, value: l1.stats().bytes }],
  },
  {
    name: 'l1_entries',
    labelNames: [],
    help: 'Entries held by L1.',
    read: (l1) => [{ labels: {}, value: l1.stats().entries }],
  },
  {
    name: 'l1_max_bytes',
    labelNames: [],
    help: 'Byte budget of L1.',
    read: (l1) => [{ labels: {}, value: l1.stats().maxSize }],
  },
]

/** Gauges of the write-behind queue. */
export const QUEUE_GAUGES: readonly GaugeSpec<QueueSource>[] = [
  {
    name: 'write_behind_queue_items',
    labelNames: ['state'],
    help: 'Writes in the write-behind queue: ready, or claimed and in flight.',
    read: async (queue) => {
      const s = await queue.stats()
      return [
        { labels: { state: 'ready' }, value: s.ready },
        { labels: { state: 'in_flight' }, value: s.inFlight },
      ]
    },
  },
  {
    name: 'write_behind_queue_capacity',
    labelNames: [],
    help: 'Most writes the write-behind queue holds.',
    read: async (queue) => [{ labels: {}, value: (await queue.stats()).capacity }],
  },
]

/** Gauges read from the event collector (with `streamEvents`). */
export const STREAM_GAUGES: readonly GaugeSpec<EventCollector>[] = [
  {
    name: 'stream_gaps_unresolved',
    labelNames: [],
    help: 'Change-stream gaps open now that a backfill did not close: must return to 0.',
    read: (c) => [{ labels: {}, value: c.gapsUnresolved }],
  },
]

/** Label names and values as an object of labels. */
export function zip(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {}
  for (let i = 0; i < names.length; i++) labels[names[i] as string] = values[i] as string
  return labels
}
