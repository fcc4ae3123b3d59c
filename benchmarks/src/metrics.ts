import { createMemCache } from '@actor-cache/memcache'
import { type CacheMetrics, createCacheMetrics } from '@actor-cache/metrics'
import { createTieredCache } from '@actor-cache/strategies'
import { Registry } from 'prom-client'
import { type BenchCase, type BenchResult, compare, table } from './harness.js'
import { actorState, zipfSequence } from './workload.js'

/** Options of the metrics suite. */
export interface MetricsBenchOptions {
  /** Resident keys. @default 100_000 */
  universe?: number
  /** Operations per case per round. @default 50_000 */
  opsPerRound?: number
  /** Measured rounds. @default 9 */
  rounds?: number
  log?: (line: string) => void
}

export interface MetricsReport {
  results: BenchResult[]
  /** L1 hit with `@actor-cache/metrics` subscribed (defaults: hits read from stats) / without (target ≤ 1.2). */
  subscribedOverBare: number
  /** The same with `hitEvents: true` (every L1 hit publishes an event). */
  hitEventsOverBare: number
  /** The same with `hitEvents` and `storeEvents` (every store call publishes too). */
  storeEventsOverBare: number
}

const BARE = 'ns.get L1 hit, nobody subscribed'
const SUBSCRIBED = 'ns.get L1 hit, metrics subscribed (defaults)'
const HIT_EVENTS = 'ns.get L1 hit, metrics with hitEvents'
const STORE_EVENTS = 'ns.get L1 hit, metrics with hitEvents + storeEvents'

/**
 * The cost of `@actor-cache/metrics` on the hottest path: a TieredCache L1 hit with nobody
 * listening vs with the metrics subscribed. The subscribed cases subscribe at the start of each
 * round and close at its end, so the cases interleave like every other suite.
 */
export async function runMetricsSuite(options: MetricsBenchOptions = {}): Promise<MetricsReport> {
  const log = options.log ?? ((line: string) => console.log(line))
  const universe = options.universe ?? 100_000
  const l1 = createMemCache({ maxSize: 512 * 1024 * 1024, defaultTtl: 300_000 })
  const cache = createTieredCache({ l1 })
  const ns = cache.namespace<ReturnType<typeof actorState>>('primary_core')
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  for (let i = 0; i < universe; i++) await ns.set(keys[i] as string, actorState(i))
  const seq = zipfSequence(universe, 0.99, 1 << 20, 11)
  const access = Array.from(seq, (r) => keys[r] as string)
  const mask = access.length - 1

  const hits = (name: string, around?: () => CacheMetrics): BenchCase => {
    let i = 0
    return {
      name,
      async run(n: number) {
        const metrics = around?.()
        let found = 0
        for (let j = 0; j < n; j++)
          if ((await ns.get(access[i++ & mask] as string)) !== undefined) found++
        metrics?.close()
        return found
      },
    }
  }
  log(
    `\n## Metrics overhead on the L1 hit path (Zipf s=0.99 over ${universe.toLocaleString('en-US')} keys)\n`,
  )
  const results = await compare(
    [
      hits(BARE),
      hits(SUBSCRIBED, () => createCacheMetrics({ registry: new Registry(), cache, l1 })),
      hits(HIT_EVENTS, () =>
        createCacheMetrics({ registry: new Registry(), cache, l1, hitEvents: true }),
      ),
      hits(STORE_EVENTS, () =>
        createCacheMetrics({
          registry: new Registry(),
          cache,
          l1,
          hitEvents: true,
          storeEvents: true,
        }),
      ),
    ],
    {
      opsPerRound: options.opsPerRound ?? 50_000,
      rounds: options.rounds ?? 9,
      warmup: 2,
      onRound: (r, of) => process.stderr.write(`\r  metrics: round ${r}/${of}`),
    },
  )
  process.stderr.write('\n')
  log(table(results, BARE))
  const ns_ = (name: string) => results.find((r) => r.name === name)?.nsPerOp ?? Number.NaN
  const subscribedOverBare = ns_(SUBSCRIBED) / ns_(BARE)
  const hitEventsOverBare = ns_(HIT_EVENTS) / ns_(BARE)
  const storeEventsOverBare = ns_(STORE_EVENTS) / ns_(BARE)
  log(
    `\nL1 hit with metrics subscribed = ${subscribedOverBare.toFixed(2)}x without (target ≤ 1.2x); ` +
      `with hitEvents = ${hitEventsOverBare.toFixed(2)}x; with hitEvents + storeEvents = ${storeEventsOverBare.toFixed(2)}x`,
  )
  await cache.close()
  await l1.close()
  return { results, subscribedOverBare, hitEventsOverBare, storeEventsOverBare }
}
