import { createRedisStore, type SingleClient } from '@actor-cache/redis'
import { createTieredCache } from '@actor-cache/strategies'
import KeyvRedis from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { redisDriver } from 'bentocache/drivers/redis'
import { createCache } from 'cache-manager'
import { Keyv } from 'keyv'
import { actorState } from './workload.js'

/** A read of one actor by rank, through one library's Redis-only cache. */
export type RankGet = (rank: number) => Promise<unknown>

/** The Redis-only caches of the peers and of the public TieredCache, loaded with the same keys. */
export interface L2Peers {
  /** `TieredCache` with only an L2 (`createRedisStore`), `ns.get`. */
  tiered: RankGet
  /** cache-manager 7 over Keyv with `@keyv/redis` (node-redis 5 inside), `get`. */
  cacheManager: RankGet
  /** bentocache 1.6 with only an L2 layer (ioredis inside), `get`. */
  bentocache: RankGet
  close(): Promise<void>
}

const TTL = 600_000

/**
 * Builds the peers over Redis at `url`, each under its own prefix, and writes `universe` actors
 * into each through its own `set` (each library reads the format it wrote).
 */
export async function openL2Peers(
  client: SingleClient,
  url: string,
  prefix: string,
  universe: number,
): Promise<L2Peers> {
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)

  const cache = createTieredCache({ l2: createRedisStore({ client, prefix: `${prefix}t` }) })
  const ns = cache.namespace<ReturnType<typeof actorState>>('primary_core', { ttl: TTL })

  const keyvStore = new KeyvRedis(url, { namespace: `${prefix}cm` })
  const keyv = new Keyv({ store: keyvStore, namespace: `${prefix}cm`, useKeyPrefix: false })
  const manager = createCache({ stores: [keyv] })

  const { hostname, port } = new URL(url)
  const bento = new BentoCache({
    default: 'l2',
    stores: {
      l2: bentostore().useL2Layer(
        redisDriver({
          connection: { host: hostname, port: Number(port || 6379) },
          prefix: `${prefix}b`,
        }),
      ),
    },
  })

  for (let i = 0; i < universe; i += 250) {
    const slice = keys.slice(i, i + 250)
    await Promise.all(
      slice.map(async (key, j) => {
        const value = actorState(i + j)
        await ns.set(key, value)
        await manager.set(key, value, TTL)
        await bento.set({ key, value, ttl: TTL })
      }),
    )
  }
  return {
    tiered: (r) => ns.get(keys[r] as string),
    cacheManager: (r) => manager.get(keys[r] as string),
    bentocache: (r) => bento.get({ key: keys[r] as string }),
    async close() {
      await ns.clear().catch(() => undefined)
      await cache.close()
      await manager.clear().catch(() => undefined)
      await manager.disconnect().catch(() => undefined)
      await bento.clear().catch(() => undefined)
      await bento.disconnectAll()
    },
  }
}
