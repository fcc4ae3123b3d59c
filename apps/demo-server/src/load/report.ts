import type { PromiseCheck, RunReport } from './promises.js'
import { count, formatTable, megabytes, millis, percent } from './table.js'

/** What `runLoad` returns: the runs and the design document's promises checked against them. */
export interface LoadReport {
  url: string
  actors: number
  concurrency: number
  durationMs: number
  hasL2: boolean
  /** The run with caching, then the one without (in the order they ran: `order`). */
  cached: RunReport
  uncached: RunReport
  order: 'cached-first' | 'uncached-first'
  checks: PromiseCheck[]
}

/** A hit ratio of a run; none while reads skip the caches. */
const hit = (run: RunReport, ratio: number | undefined): string =>
  run.caching ? percent(ratio) : 'caches off'

/** Reads the server answered from its response cache (`x-cache: hit`), of the reads it cached. */
function fromResponseCache(run: RunReport): string {
  const { hits, misses } = run.client.responseCache
  if (!run.caching) return 'caching off'
  return `${count(hits)} of ${count(hits + misses)} (${percent(hits / (hits + misses))})`
}

/** Reads answered 304 Not Modified (the player's ETag was current), of all reads. */
function notModified(run: RunReport): string {
  const reads = run.client.byKind.reads
  const n = run.client.outcomes.notModified
  return `${count(n)} of ${count(reads)} (${percent(n / reads)})`
}

function runRows(on: RunReport, off: RunReport): string[][] {
  const both = (f: (r: RunReport) => string): string[] => [f(on), f(off)]
  const o = (r: RunReport) => r.client.outcomes
  return [
    ['requests', ...both((r) => count(r.client.requests))],
    ['throughput', ...both((r) => `${count(r.client.throughput)} req/s`)],
    ['latency p50', ...both((r) => millis(r.client.latency.p50))],
    ['latency p99', ...both((r) => millis(r.client.latency.p99))],
    ['database reads', ...both((r) => count(r.server.db.reads))],
    ['database writes', ...both((r) => count(r.server.db.writes))],
    ['database operations / request', ...both((r) => r.dbPerRequest.toFixed(2))],
    ['L1 hit ratio', ...both((r) => hit(r, r.l1HitRatio))],
    ['L2 hit ratio', ...both((r) => (r.server.hasL2 ? hit(r, r.l2HitRatio) : 'no L2'))],
    ['overall hit ratio', ...both((r) => hit(r, r.overallHitRatio))],
    ['reads from the response cache', ...both(fromResponseCache)],
    ['reads answered 304', ...both(notModified)],
    [
      'heap used (mean / peak)',
      ...both(
        (r) =>
          `${megabytes(r.server.memory.heapUsedMean)} / ${megabytes(r.server.memory.heapUsedPeak)}`,
      ),
    ],
    [
      'RSS (mean / peak)',
      ...both(
        (r) => `${megabytes(r.server.memory.rssMean)} / ${megabytes(r.server.memory.rssPeak)}`,
      ),
    ],
    [
      'L1 held at the end',
      ...both(
        (r) => `${count(r.server.l1Held.entries)} entries, ${megabytes(r.server.l1Held.bytes)}`,
      ),
    ],
    [
      'ok / 304 / 404 / 409 / 429 / errors',
      ...both((r) =>
        [o(r).ok, o(r).notModified, o(r).notFound, o(r).conflicts, o(r).rateLimited, o(r).errors]
          .map(count)
          .join(' / '),
      ),
    ],
  ]
}

/** The report as lines: the runs side by side, the design document's tables, what was not met. */
export function formatReport(report: LoadReport): string[] {
  const { cached: on, uncached: off } = report
  const lines = [
    `Runs (${report.actors} actors, Zipf; ${report.concurrency} concurrent requests; ${report.durationMs / 1000} s each; ${report.order}; caches dropped before each run)`,
    formatTable(['metric', 'caching on', 'caching off'], runRows(on, off)),
  ]
  for (const table of ['Expected Improvements', 'Cache Hit Ratios'] as const) {
    const rows = report.checks.filter((c) => c.table === table)
    lines.push('', `Design document: ${table}`)
    lines.push(
      formatTable(
        ['metric', 'design promise', 'measured', 'met?'],
        rows.map((c) => [c.metric, c.promise, c.measured, c.met]),
      ),
    )
  }
  const notes = report.checks.filter((c) => c.note !== undefined)
  if (notes.length > 0) lines.push('', 'How:', ...notes.map((c) => `  ${c.metric}: ${c.note}`))
  const unmet = report.checks.filter((c) => c.met === 'no')
  lines.push('')
  if (unmet.length === 0) lines.push('Every promise that could be measured was met.')
  else {
    lines.push('Not met:')
    for (const c of unmet)
      lines.push(`  ${c.metric}: promised ${c.promise}, measured ${c.measured}`)
  }
  const trouble = [on, off].flatMap((r) => r.client.sampleErrors)
  if (trouble.length > 0)
    lines.push('', 'Unexpected answers (first few):', ...trouble.map((t) => `  ${t}`))
  if (on.client.outcomes.rateLimited + off.client.outcomes.rateLimited > 0) {
    lines.push(
      '',
      'Some requests were rate limited (429): raise demo.rate_limit.points in the configuration, or lower --concurrency.',
    )
  }
  return lines
}
