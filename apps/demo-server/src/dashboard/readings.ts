import type { Registry } from 'prom-client'

/** Prefix of the metrics `createCacheMetrics` registers (its default, which the stack keeps). */
const PREFIX = 'actor_cache_'

/** Cumulative bucket counts of a histogram: `le` (seconds; `Infinity` last) → observations. */
export type Buckets = ReadonlyMap<number, number>

/** The counters the dashboard reads from the metrics registry, summed over namespaces. */
export interface Counters {
  reads: number
  /** Hits by tier label (`l1`, `l2`, `record`; `l3` when L3 is a cache). */
  hits: Record<string, number>
  /** Evictions and expirations by tier label. */
  evictions: Record<string, number>
  expirations: Record<string, number>
  flushes: number
  /** Write-behind queue gauges. */
  queue: { ready: number; inFlight: number; capacity: number }
  /** Durations of set, delete, load, load_many and refresh, every namespace together. */
  operations: Buckets
  /** Age of the oldest write of each flushed batch. */
  flushLag: Buckets
}

interface Sample {
  value: number
  labels: Readonly<Record<string, string | number | undefined>>
  metricName?: string
}

/**
 * Reads the metrics package's series from its registry (what `GET /metrics` exposes, as objects):
 * the dashboard computes nothing the metrics do not already count.
 */
export async function readCounters(registry: Registry): Promise<Counters> {
  const metrics = await registry.getMetricsAsJSON()
  const byName = new Map(metrics.map((m) => [m.name, m.values as Sample[]]))
  const series = (name: string): Sample[] => byName.get(PREFIX + name) ?? []
  const total = (name: string): number => series(name).reduce((n, s) => n + s.value, 0)
  const byLabel = (name: string, label: string): Record<string, number> => {
    const out: Record<string, number> = {}
    for (const s of series(name)) {
      const key = String(s.labels[label] ?? '')
      out[key] = (out[key] ?? 0) + s.value
    }
    return out
  }
  const queue = byLabel('write_behind_queue_items', 'state')
  return {
    reads: total('reads_total'),
    hits: byLabel('hits_total', 'tier'),
    evictions: byLabel('evictions_total', 'tier'),
    expirations: byLabel('expirations_total', 'tier'),
    flushes: total('flushes_total'),
    queue: {
      ready: queue.ready ?? 0,
      inFlight: queue.in_flight ?? 0,
      capacity: total('write_behind_queue_capacity'),
    },
    operations: buckets(series('operation_duration_seconds')),
    flushLag: buckets(series('flush_lag_seconds')),
  }
}

/** The `_bucket` samples of a histogram, summed by `le` over every other label. */
function buckets(samples: readonly Sample[]): Buckets {
  const out = new Map<number, number>()
  for (const s of samples) {
    if (s.metricName?.endsWith('_bucket') !== true) continue
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)
    out.set(le, (out.get(le) ?? 0) + s.value)
  }
  return new Map([...out].sort((a, b) => a[0] - b[0]))
}

/** `now - before`, bucket by bucket: the observations between two readings. */
export function bucketDelta(now: Buckets, before: Buckets | undefined): Buckets {
  if (before === undefined) return now
  const out = new Map<number, number>()
  for (const [le, n] of now) out.set(le, Math.max(0, n - (before.get(le) ?? 0)))
  return out
}

/** Observations in cumulative buckets (the `+Inf` bucket's count). */
export function observations(b: Buckets): number {
  let n = 0
  for (const count of b.values()) n = Math.max(n, count)
  return n
}

/**
 * The `q` quantile of cumulative buckets in milliseconds, interpolated linearly within its bucket
 * as PromQL's `histogram_quantile` does; `null` without observations. A quantile in the `+Inf`
 * bucket is the largest finite bound (the histogram cannot say more).
 */
export function quantileMs(b: Buckets, q: number): number | null {
  const total = observations(b)
  if (total === 0) return null
  const rank = q * total
  let lower = 0
  let below = 0
  for (const [le, count] of b) {
    if (count >= rank) {
      if (le === Infinity) return lower * 1000
      const inBucket = count - below
      const fraction = inBucket === 0 ? 1 : (rank - below) / inBucket
      return (lower + (le - lower) * fraction) * 1000
    }
    lower = le
    below = count
  }
  return lower * 1000
}

/** p50, p95 and p99 of cumulative buckets, in ms. */
export interface Percentiles {
  p50: number | null
  p95: number | null
  p99: number | null
  count: number
}

export function percentiles(b: Buckets): Percentiles {
  return {
    p50: quantileMs(b, 0.5),
    p95: quantileMs(b, 0.95),
    p99: quantileMs(b, 0.99),
    count: observations(b),
  }
}

/** Hit ratio at each level: L1 of all reads, L2 of those L1 missed, the record of those left. */
export interface HitRatios {
  l1: number | null
  l2: number | null
  record: number | null
  overall: number | null
  reads: number
}

/**
 * Hit ratios of the reads counted between two readings (`before` absent: since start). Levels
 * below L1 are ratios of the reads that reached them, as the metrics' `hit_ratio{level="l2"}`.
 */
export function hitRatios(now: Counters, before: Counters | undefined): HitRatios {
  const delta = (tier: string) => (now.hits[tier] ?? 0) - (before?.hits[tier] ?? 0)
  const reads = now.reads - (before?.reads ?? 0)
  const l1 = delta('l1')
  const l2 = delta('l2') + delta('l3')
  const record = delta('record')
  const all = Object.keys(now.hits).reduce((n, tier) => n + delta(tier), 0)
  const ratio = (hits: number, of: number) => (of > 0 ? Math.min(1, hits / of) : null)
  return {
    l1: ratio(l1, reads),
    l2: ratio(l2, reads - l1),
    record: ratio(record, reads - l1 - l2),
    overall: ratio(all, reads),
    reads,
  }
}
