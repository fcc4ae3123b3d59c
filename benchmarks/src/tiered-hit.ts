import { createMemCache } from '@actor-cache/memcache'
import { createTieredCache, type NamespaceStats } from '@actor-cache/strategies'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { createCache } from 'cache-manager'
import { LRUCache } from 'lru-cache'
import { awaitedCase, type BenchResult, compare, table } from './harness.js'
import { int, NS, progress, type State, TTL } from './tiered-common.js'
import { actorState, zipfSequence } from './workload.js'

/** The hit path's figures. */
export interface HitPathReport {
  hit: BenchResult[]
  /** tiered `ns.get` L1 hit / awaited lru-cache get (target ≤ 1.5). */
  hitRatioToAwaitedLru: number
  /** How many times faster than bentocache's memory get (target ≥ 10), per serialize mode. */
  fasterThanBentocache: { serialize: number; noSerialize: number }
}

const TIERED_GET = 'tiered ns.get (L1 hit)'
const LRU_AWAITED = 'lru-cache get (ttl), awaited'
const BENTO_SER = 'bentocache get (memory, serialize: true)'
const BENTO_RAW = 'bentocache get (memory, serialize: false)'
const CACHE_MANAGER = 'cache-manager 7 get (Keyv memory)'

/** The public TieredCache's L1 hit next to the raw libraries and the peers' memory gets. */
export async function hitPath(
  log: (line: string) => void,
  universe: number,
  opsPerRound: number,
  rounds: number,
): Promise<HitPathReport> {
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  const values = Array.from({ length: universe }, (_, i) => actorState(i))
  const seq = zipfSequence(universe, 0.99, 1 << 20, 7)
  const accessKeys = Array.from(seq, (rank) => keys[rank] as string)
  const mask = accessKeys.length - 1

  const map = new Map<string, State>()
  const lruTtl = new LRUCache<string, State>({ max: universe * 2, ttl: TTL })
  const mem = createMemCache({ maxSize: 1024 * 1024 * 1024, defaultTtl: TTL, cleanupInterval: 0 })
  let loaderCalls = 0
  const cache = createTieredCache({ l1: mem })
  const ns = cache.namespace<State>(NS, {
    ttl: TTL,
    record: false,
    loader: async () => {
      loaderCalls++
      return undefined
    },
  })
  const memStore = mem.namespace<State>(NS)
  const bento = (serialize: boolean) =>
    new BentoCache({
      default: 'memory',
      stores: {
        memory: bentostore().useL1Layer(memoryDriver({ maxItems: universe * 2, serialize })),
      },
    })
  const bentoSer = bento(true)
  const bentoRaw = bento(false)
  const manager = createCache({ ttl: TTL })

  process.stderr.write('  loading keys...')
  for (let i = 0; i < universe; i++) {
    const k = keys[i] as string
    const v = values[i] as State
    map.set(k, v)
    lruTtl.set(k, v)
    await ns.set(k, v)
    await bentoSer.set({ key: k, value: v, ttl: TTL })
    await bentoRaw.set({ key: k, value: v, ttl: TTL })
    await manager.set(k, v, TTL)
  }
  // every contender must hold every key before timing starts
  for (let i = 0; i < universe; i += 997) {
    const k = keys[i] as string
    const got = [
      (await ns.get(k))?.id,
      (await bentoSer.get<State>({ key: k }))?.id,
      (await bentoRaw.get<State>({ key: k }))?.id,
      (await manager.get<State>(k))?.id,
    ]
    if (got.some((id) => id !== k))
      throw new Error(`pre-warm check failed for ${k}: ${JSON.stringify(got)}`)
  }
  const statsBefore = cache.stats().namespaces[NS] as NamespaceStats
  process.stderr.write('\n')

  const cursor = (): (() => string) => {
    let i = 0
    return () => accessKeys[i++ & mask] as string
  }
  const asyncCase = (name: string, get: (k: string) => Promise<unknown>) =>
    awaitedCase(name, cursor(), get)

  log(`\n## Tiered L1 hit path (Zipf s=0.99 over ${int(universe)} resident keys, TTL on)\n`)
  const results = await compare(
    [
      asyncCase('Map.get, awaited', async (k) => map.get(k)),
      asyncCase(LRU_AWAITED, async (k) => lruTtl.get(k)),
      asyncCase('memcache get, awaited (the L1 underneath)', (k) => memStore.get(k)),
      asyncCase(TIERED_GET, (k) => ns.get(k)),
      asyncCase('tiered ns.getOrSet (L1 hit)', (k) => ns.getOrSet(k)),
      asyncCase(BENTO_SER, (k) => bentoSer.get({ key: k })),
      asyncCase(BENTO_RAW, (k) => bentoRaw.get({ key: k })),
      asyncCase(CACHE_MANAGER, (k) => manager.get(k)),
    ],
    { opsPerRound, rounds, warmup: 2, onRound: progress('hit path') },
  )
  process.stderr.write('\n')
  log(table(results, LRU_AWAITED))

  const after = cache.stats().namespaces[NS] as NamespaceStats
  const slowPath =
    after.lowerHits +
    after.recordHits +
    after.loads +
    after.misses +
    after.negativeHits -
    (statsBefore.lowerHits +
      statsBefore.recordHits +
      statsBefore.loads +
      statsBefore.misses +
      statsBefore.negativeHits)
  log(
    `\ncheck: tiered reads that missed L1 during timing = ${slowPath}, loader calls = ${loaderCalls}` +
      (slowPath === 0 && loaderCalls === 0 ? ' (ok: every read was an L1 hit)' : ' (UNEXPECTED)'),
  )

  const cost = (name: string) => results.find((r) => r.name === name)?.nsPerOp ?? Number.NaN
  const hitRatioToAwaitedLru = cost(TIERED_GET) / cost(LRU_AWAITED)
  const fasterThanBentocache = {
    serialize: cost(BENTO_SER) / cost(TIERED_GET),
    noSerialize: cost(BENTO_RAW) / cost(TIERED_GET),
  }
  log(
    `tiered ns.get L1 hit = ${hitRatioToAwaitedLru.toFixed(2)}x an awaited lru-cache get (target ≤ 1.5x); ` +
      `${fasterThanBentocache.serialize.toFixed(1)}x faster than bentocache (serialize: true), ` +
      `${fasterThanBentocache.noSerialize.toFixed(1)}x faster than bentocache (serialize: false) (target ≥ 10x); ` +
      `${(cost(CACHE_MANAGER) / cost(TIERED_GET)).toFixed(1)}x faster than cache-manager`,
  )

  await cache.close()
  await mem.close()
  await bentoSer.disconnectAll()
  await bentoRaw.disconnectAll()
  await manager.disconnect()
  return { hit: results, hitRatioToAwaitedLru, fasterThanBentocache }
}
