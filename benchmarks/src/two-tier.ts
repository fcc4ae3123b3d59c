import { createMemCache } from '@actor-cache/memcache'
import { createRedisBus, createRedisStore } from '@actor-cache/redis'
import { createTieredCache } from '@actor-cache/strategies'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { connectRedis } from './connect-redis.js'
import { awaitedCase, type BenchResult, compare, table } from './harness.js'
import { progress, type State } from './tiered-common.js'
import { actorState, zipfSequence } from './workload.js'

/** Two tiers of both libraries, side by side. */
export interface TwoTierReport {
  results: BenchResult[]
  /** TieredCache get throughput over bentocache's, at 1 and at 64 in flight (targets ≥ 1). */
  overBentocache: { one: number; many: number }
}

const TTL = 600_000
const OURS = (n: number) => `TieredCache L1 + L2 + bus ns.get, ${n} in flight`
const BENTO = (n: number) => `bentocache L1 + L2 + bus get, ${n} in flight`

/**
 * The TieredCache (memcache L1 of `l1Entries`, Redis L2, Redis invalidation bus) against
 * bentocache's two-tier cache (memory L1 of as many items, Redis L2, Redis bus) on the same
 * Zipf 0.99 reads over `universe` keys written beforehand: most reads miss the small L1.
 */
export async function twoTierVsBentocache(
  log: (line: string) => void,
  input: { redisUrl: string; universe?: number; l1Entries?: number; rounds?: number },
): Promise<TwoTierReport> {
  const universe = input.universe ?? 10_000
  const l1Entries = input.l1Entries ?? 100
  const rounds = input.rounds ?? 7
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  const client = await connectRedis(input.redisUrl, 'tiered')
  const prefix = `b2t${process.pid}`
  const mem = createMemCache({ maxEntries: l1Entries, defaultTtl: TTL, cleanupInterval: 0 })
  const bus = createRedisBus({ client, prefix })
  const cache = createTieredCache({ l1: mem, l2: createRedisStore({ client, prefix }), bus })
  const ns = cache.namespace<State>('primary_core', { ttl: TTL })
  const { hostname, port } = new URL(input.redisUrl)
  const connection = { host: hostname, port: Number(port || 6379) }
  const bento = new BentoCache({
    default: 'two',
    stores: {
      two: bentostore()
        .useL1Layer(memoryDriver({ maxItems: l1Entries }))
        .useL2Layer(redisDriver({ connection, prefix: `${prefix}b` }))
        .useBus(redisBusDriver({ connection })),
    },
  })
  try {
    process.stderr.write('  two tiers: loading keys...')
    for (let i = 0; i < universe; i += 250) {
      await Promise.all(
        keys.slice(i, i + 250).map(async (key, j) => {
          await ns.set(key, actorState(i + j))
          await bento.set({ key, value: actorState(i + j), ttl: TTL })
        }),
      )
    }
    const seq = zipfSequence(universe, 0.99, 1 << 16, 23)
    const cursor = () => {
      let i = 0
      return () => keys[seq[i++ & (seq.length - 1)] as number] as string
    }
    const ours = (key: string) => ns.get(key)
    const theirs = (key: string) => bento.get({ key })
    const many = (name: string, get: (key: string) => Promise<unknown>) => {
      const next = cursor()
      return {
        name,
        async run(n: number) {
          let hits = 0
          for (let done = 0; done < n; done += 64) {
            const got = await Promise.all(Array.from({ length: 64 }, () => get(next())))
            for (const v of got) if (v !== undefined) hits++
          }
          return hits
        },
      }
    }
    const results = await compare(
      [
        awaitedCase(OURS(1), cursor(), ours),
        awaitedCase(BENTO(1), cursor(), theirs),
        many(OURS(64), ours),
        many(BENTO(64), theirs),
      ],
      { opsPerRound: 4_096, rounds, warmup: 1, onRound: progress('two tiers') },
    )
    process.stderr.write('\n')
    const rate = (name: string) => results.find((r) => r.name === name)?.opsPerSec ?? Number.NaN
    const overBentocache = {
      one: rate(OURS(1)) / rate(BENTO(1)),
      many: rate(OURS(64)) / rate(BENTO(64)),
    }
    log(
      `\n## Two tiers: L1 of ${l1Entries} entries + Redis L2 + Redis bus (Zipf 0.99 over ` +
        `${universe.toLocaleString('en-US')} keys; most reads miss L1)\n`,
    )
    log(table(results, BENTO(1)))
    log(
      `\nTieredCache / bentocache get throughput: ${overBentocache.one.toFixed(2)}x at 1 in flight, ` +
        `${overBentocache.many.toFixed(2)}x at 64 in flight (targets ≥ 1.0x)`,
    )
    return { results, overBentocache }
  } finally {
    await ns.clear().catch(() => undefined)
    await cache.close()
    await bus.close().catch(() => undefined)
    await mem.close()
    await bento.clear().catch(() => undefined)
    await bento.disconnectAll()
    await client.close()
  }
}
