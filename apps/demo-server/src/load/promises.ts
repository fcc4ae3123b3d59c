import type { ServerStats } from './admin-client.js'
import type { DriveResult } from './driver.js'
import { megabytes, millis, percent } from './table.js'

/** One run: what the clients saw and what the server counted. */
export interface RunReport {
  caching: boolean
  client: DriveResult
  server: ServerStats
  /** Database operations (reads + writes) per request. */
  dbPerRequest: number
  /** L1 hits / L1 reads; undefined without reads. */
  l1HitRatio: number | undefined
  /** L2 hits / L2 reads (reads that missed L1); undefined without L2 or reads. */
  l2HitRatio: number | undefined
  /** Reads answered by L1 or L2 / reads; undefined without reads. */
  overallHitRatio: number | undefined
}

/** Whether a promise of the design document was met by the measurement. */
export type Verdict = 'yes' | 'no' | 'not applicable' | 'not comparable'

/** One row of the design document's tables beside the measurement. */
export interface PromiseCheck {
  table: 'Expected Improvements' | 'Cache Hit Ratios'
  metric: string
  /** As the design document states it. */
  promise: string
  measured: string
  /** The measured number the verdict compares (a fraction or a factor). */
  value: number | undefined
  met: Verdict
  /** How it was measured, or why there is no verdict. */
  note?: string
}

const ratio = (part: number, whole: number): number | undefined =>
  whole === 0 ? undefined : part / whole

/** The derived numbers of a run. */
export function summarizeRun(
  caching: boolean,
  client: DriveResult,
  server: ServerStats,
): RunReport {
  const l1Reads = server.l1.hits + server.l1.misses
  const l2Reads = server.l2.hits + server.l2.misses
  const dbPerRequest = client.requests === 0 ? 0 : server.db.total / client.requests
  // caching off: reads skip the caches; the lookups left are writes' own (a version check)
  if (!caching) {
    const none = { l1HitRatio: undefined, l2HitRatio: undefined, overallHitRatio: undefined }
    return { caching, client, server, dbPerRequest, ...none }
  }
  return {
    caching,
    client,
    server,
    dbPerRequest,
    l1HitRatio: ratio(server.l1.hits, l1Reads),
    l2HitRatio: server.hasL2 ? ratio(server.l2.hits, l2Reads) : undefined,
    overallHitRatio: ratio(server.l1.hits + server.l2.hits, l1Reads),
  }
}

const atLeast = (value: number | undefined, min: number): Verdict =>
  value === undefined ? 'not applicable' : value >= min ? 'yes' : 'no'

/** `20.0% fewer`, or `5.0% more` for a negative change. */
const signed = (change: number | undefined, less: string, more: string): string =>
  change === undefined
    ? 'n/a'
    : change < 0
      ? `${percent(-change)} ${more}`
      : `${percent(change)} ${less}`

/** 1 - cached / uncached: how much smaller the cached run's number is. */
const reduction = (cached: number, uncached: number): number | undefined =>
  uncached === 0 ? undefined : 1 - cached / uncached

function improvements(on: RunReport, off: RunReport): PromiseCheck[] {
  const table = 'Expected Improvements' as const
  const db = reduction(on.dbPerRequest, off.dbPerRequest)
  const p50 = reduction(on.client.latency.p50, off.client.latency.p50)
  const p99 = reduction(on.client.latency.p99, off.client.latency.p99)
  const speedup =
    off.client.throughput === 0 ? undefined : on.client.throughput / off.client.throughput
  const heap = reduction(on.server.memory.heapUsedMean, off.server.memory.heapUsedMean)
  const perRequest = (r: RunReport) => r.dbPerRequest.toFixed(2)
  return [
    {
      table,
      metric: 'Query Performance: database queries',
      promise: '80-90% reduction',
      measured: `${signed(db, 'fewer', 'more')} per request (${perRequest(on)} vs ${perRequest(off)})`,
      value: db,
      met: atLeast(db, 0.8),
      note: 'reads and writes of the store of record per request, caching on vs off',
    },
    {
      table,
      metric: 'Response Time: p50',
      promise: '60-80% faster',
      measured: `${signed(p50, 'faster', 'slower')} (${millis(on.client.latency.p50)} vs ${millis(off.client.latency.p50)})`,
      value: p50,
      met: atLeast(p50, 0.6),
    },
    {
      table,
      metric: 'Response Time: p99',
      promise: '60-80% faster',
      measured: `${signed(p99, 'faster', 'slower')} (${millis(on.client.latency.p99)} vs ${millis(off.client.latency.p99)})`,
      value: p99,
      met: atLeast(p99, 0.6),
    },
    {
      table,
      metric: 'Throughput',
      promise: '3-5x requests per second',
      measured: `${speedup === undefined ? 'n/a' : `${speedup.toFixed(2)}x`} (${Math.round(on.client.throughput)} vs ${Math.round(off.client.throughput)} req/s)`,
      value: speedup,
      met: atLeast(speedup, 3),
    },
    {
      table,
      metric: 'Memory Usage',
      promise: '40-60% reduction',
      measured: `L1 holds ${megabytes(on.server.l1Held.bytes)}; mean heap ${megabytes(on.server.memory.heapUsedMean)} on vs ${megabytes(off.server.memory.heapUsedMean)} off (${signed(heap, 'less', 'more')})`,
      value: heap,
      met: 'not comparable',
      note: 'a cache adds memory (what L1 holds) and cannot shrink the process; the heap of the server, sampled every 250 ms of each run, differs between runs by garbage-collection timing more than by what L1 holds, so it does not say whether caching saved memory',
    },
    {
      table,
      metric: 'Scalability',
      promise: 'better horizontal scaling',
      measured: 'not measured (one instance)',
      value: undefined,
      met: 'not applicable',
      note: 'needs two instances sharing Redis',
    },
  ]
}

function hitRatios(on: RunReport): PromiseCheck[] {
  const table = 'Cache Hit Ratios' as const
  const reads = (hits: number, misses: number) => `${hits} of ${hits + misses} reads`
  const { l1, l2 } = on.server
  return [
    {
      table,
      metric: 'L1 Cache (MemCache)',
      promise: '85-95% hit ratio',
      measured: `${percent(on.l1HitRatio)} (${reads(l1.hits, l1.misses)})`,
      value: on.l1HitRatio,
      met: atLeast(on.l1HitRatio, 0.85),
    },
    {
      table,
      metric: 'L2 Cache (Redis)',
      promise: '70-85% hit ratio',
      measured: on.server.hasL2
        ? `${percent(on.l2HitRatio)} (${reads(l2.hits, l2.misses)} that missed L1)`
        : 'no L2 (the server runs without REDIS_URL)',
      value: on.l2HitRatio,
      met: atLeast(on.l2HitRatio, 0.7),
      ...(on.server.hasL2 ? {} : { note: 'start the server with REDIS_URL to measure L2' }),
    },
    {
      table,
      metric: 'Overall',
      promise: '90-98% combined hit ratio',
      measured: `${percent(on.overallHitRatio)} (reads answered by L1 or L2)`,
      value: on.overallHitRatio,
      met: atLeast(on.overallHitRatio, 0.9),
    },
  ]
}

/**
 * The design document's promises ("Expected Improvements", "Cache Hit Ratios") against the run
 * with caching (`on`) and the one without (`off`). A range is met from its lower bound up.
 */
export function checkPromises(on: RunReport, off: RunReport): PromiseCheck[] {
  return [...improvements(on, off), ...hitRatios(on)]
}
