import { createMemCache, type EvictionPolicyName } from '@actor-cache/memcache'
import { prng, zipfSequence } from './workload.js'

/** Options of the hit-ratio suite. */
export interface HitRatioOptions {
  /** Distinct keys. @default 1_000_000 */
  universe?: number
  /** Accesses before counting starts (the cache fills and the policy learns). @default 1_000_000 */
  warmup?: number
  /** Accesses counted. @default 2_000_000 */
  measured?: number
  /** Cache capacities as fractions of the universe. @default [0.01, 0.1] */
  capacities?: readonly number[]
  log?: (line: string) => void
}

/** Hit ratios of one workload at one capacity. */
export interface HitRatioRow {
  workload: string
  capacity: number
  lru: number
  tinylfu: number
  /** The most popular keys pinned: the best any fixed set of keys does. */
  optimum: number
  /** (tinylfu − lru) / (optimum − lru): the share of LRU's gap to the optimum recovered. */
  gapRecovered: number
}

interface Workload {
  name: string
  /** Key ranks in access order: `warmup` accesses, then `measured` ones. */
  trace: Uint32Array
}

const SCAN_EVERY = 250_000
const SCAN_LENGTH = 50_000

/**
 * Hit ratio of memcache's eviction policies over long access traces (a miss is followed by a
 * write of the key, as a read-through cache does): Zipf s ∈ {0.7, 0.99, 1.2}, uniform, and Zipf
 * 0.99 interrupted by sequential scans (a batch job walking all actors), at L1 capacities of 1%
 * and 10% of the keys, next to the static optimum.
 */
export async function runHitRatioSuite(options: HitRatioOptions = {}): Promise<HitRatioRow[]> {
  const log = options.log ?? console.log
  const universe = options.universe ?? 1_000_000
  const warmup = options.warmup ?? 1_000_000
  const measured = options.measured ?? 2_000_000
  const capacities = options.capacities ?? [0.01, 0.1]
  const length = warmup + measured
  const progress = (what: string) => process.stderr.write(`\r\x1b[K  ${what}`)

  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  const workloads: (() => Workload)[] = [
    ...[0.7, 0.99, 1.2].map((s) => () => ({
      name: `Zipf s=${s}`,
      trace: zipfSequence(universe, s, length, 11),
    })),
    () => ({ name: 'uniform', trace: uniformSequence(universe, length, 12) }),
    () => ({
      name: `Zipf s=0.99 + scans (${SCAN_LENGTH.toLocaleString('en-US')} keys every ${SCAN_EVERY.toLocaleString('en-US')})`,
      trace: withScans(zipfSequence(universe, 0.99, length, 13), universe),
    }),
  ]

  log(
    `\n## L1 hit ratio (${universe.toLocaleString('en-US')} keys; ${warmup.toLocaleString('en-US')} accesses of warm-up, ${measured.toLocaleString('en-US')} counted; a miss writes the key)\n`,
  )
  const rows: HitRatioRow[] = []
  for (const make of workloads) {
    progress('generating the trace')
    const { name, trace } = make()
    for (const fraction of capacities) {
      const capacity = Math.round(universe * fraction)
      const run = (policy: EvictionPolicyName): number => {
        progress(`${name}, capacity ${capacity.toLocaleString('en-US')}: ${policy}`)
        return simulate(policy, capacity, trace, keys, warmup)
      }
      const lru = run('lru')
      const tinylfu = run('tinylfu')
      const optimum = staticOptimum(trace, warmup, capacity)
      // under uniform access every policy is at the optimum: no gap to recover
      const gapRecovered = optimum - lru > 0.005 ? (tinylfu - lru) / (optimum - lru) : Number.NaN
      rows.push({ workload: name, capacity: fraction, lru, tinylfu, optimum, gapRecovered })
    }
  }
  process.stderr.write('\r\x1b[K')
  log(formatRows(rows))
  const worst = Math.min(...rows.map((r) => r.tinylfu - r.lru))
  const zipf99 = rows.filter((r) => r.workload === 'Zipf s=0.99')
  log(
    `\ntinylfu − lru, worst workload: ${(worst * 100).toFixed(3)} points (target ≥ 0); gap to the optimum recovered on Zipf 0.99: ` +
      `${zipf99.map((r) => `${Math.round(r.gapRecovered * 100)}% at ${pct(r.capacity)}`).join(', ')} (target ≥ 50%)`,
  )
  return rows
}

/** Replays `trace` through a memcache of `capacity` entries; returns the hit ratio after `warmup`. */
function simulate(
  policy: EvictionPolicyName,
  capacity: number,
  trace: Uint32Array,
  keys: readonly string[],
  warmup: number,
): number {
  const cache = createMemCache({
    maxEntries: capacity,
    maxSize: 2 ** 40,
    evictionPolicy: policy,
    values: 'reference',
    enableStatistics: false,
    cleanupInterval: 0,
  })
  const store = cache.namespace<number>('actors')
  let hits = 0
  for (let i = 0; i < trace.length; i++) {
    const rank = trace[i] as number
    const key = keys[rank] as string
    if (store.getSync(key) !== undefined) {
      if (i >= warmup) hits++
    } else {
      store.setSync(key, rank)
    }
  }
  void cache.close()
  return hits / (trace.length - warmup)
}

/**
 * Hit ratio of pinning the `capacity` most popular keys: ranks below `capacity` (every workload
 * here draws rank 0 most often; under uniform access any set does as well). Choosing the keys by
 * their counts in the trace itself would credit the optimum with hindsight (under uniform access,
 * double the true 1% / 10%).
 */
function staticOptimum(trace: Uint32Array, warmup: number, capacity: number): number {
  let pinned = 0
  for (let i = warmup; i < trace.length; i++) if ((trace[i] as number) < capacity) pinned++
  return pinned / (trace.length - warmup)
}

/** `length` ranks drawn uniformly from [0, universe). */
function uniformSequence(universe: number, length: number, seed: number): Uint32Array {
  const rand = prng(seed)
  const out = new Uint32Array(length)
  for (let i = 0; i < length; i++) out[i] = Math.floor(rand() * universe)
  return out
}

/**
 * The same length of trace with a sequential scan of {@link SCAN_LENGTH} keys after every
 * {@link SCAN_EVERY} accesses; successive scans continue where the last one stopped, so over the
 * trace they walk every key.
 */
function withScans(trace: Uint32Array, universe: number): Uint32Array {
  const out = new Uint32Array(trace.length)
  let cursor = 0
  let from = 0
  for (let i = 0; i < out.length; ) {
    for (let j = 0; j < SCAN_EVERY && i < out.length; j++) out[i++] = trace[from++] as number
    for (let j = 0; j < SCAN_LENGTH && i < out.length; j++) {
      out[i++] = cursor
      cursor = (cursor + 1) % universe
    }
  }
  return out
}

const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`

function formatRows(rows: readonly HitRatioRow[]): string {
  const head = ['workload', 'capacity', 'lru', 'tinylfu', 'static optimum', 'gap recovered']
  const cells = rows.map((r) => [
    r.workload,
    pct(r.capacity),
    pct(r.lru, 2),
    pct(r.tinylfu, 2),
    pct(r.optimum, 2),
    Number.isNaN(r.gapRecovered) ? '–' : `${Math.round(r.gapRecovered * 100)}%`,
  ])
  const widths = head.map((h, i) =>
    Math.max(h.length, ...cells.map((c) => (c[i] as string).length)),
  )
  const line = (c: readonly string[]): string =>
    `| ${c.map((x, i) => (i === 0 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join(' | ')} |`
  return [
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
  ].join('\n')
}
