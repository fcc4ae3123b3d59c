import { runStoreConformance } from '@actor-cache/core/testing'
import { createClient, createCluster } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnyRedisClient,
  createRedisBus,
  createRedisLockProvider,
  createRedisStore,
  type RedisTier,
} from '../src/index.js'
import { eventually } from './helpers.js'
import { type RedisServer, startCluster, startRedis, type TestCluster } from './servers.js'

let server: RedisServer
let cluster: TestCluster
const clients: AnyRedisClient[] = []

beforeAll(async () => {
  ;[server, cluster] = await Promise.all([startRedis(), startCluster(3)])
}, 60_000)

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  await server?.stop()
  await cluster?.stop()
})

let single: RedisTier
runStoreConformance({
  name: 'redis (single server)',
  async createTier() {
    const client = createClient({ url: server.url })
    await client.connect()
    clients.push(client as unknown as AnyRedisClient)
    single = createRedisStore({ client: client as unknown as AnyRedisClient, prefix: 'conf' })
    return single
  },
  commandCount: () => single.commandsSent,
})

let clustered: RedisTier
runStoreConformance({
  name: 'redis (3-master cluster)',
  async createTier() {
    const client = createCluster({ rootNodes: cluster.rootNodes })
    await client.connect()
    clients.push(client as unknown as AnyRedisClient)
    clustered = createRedisStore({ client: client as unknown as AnyRedisClient, prefix: 'conf' })
    return clustered
  },
  commandCount: () => clustered.commandsSent,
})

describe('cluster specifics', () => {
  it('carries invalidations and resets after the pub/sub connections are killed', async () => {
    const make = async (id: string) => {
      const client = createCluster({ rootNodes: cluster.rootNodes })
      await client.connect()
      clients.push(client as unknown as AnyRedisClient)
      const bus = createRedisBus({
        client: client as unknown as AnyRedisClient,
        prefix: 'cb',
        instanceId: id,
      })
      const got: string[] = []
      const resets: string[] = []
      bus.subscribe({
        onInvalidate: (m) => got.push(...(m.keys ?? [])),
        onReset: (r) => resets.push(r),
      })
      await bus.start()
      return { bus, got, resets }
    }
    const a = await make('a')
    const b = await make('b')
    await a.bus.publish({ namespace: 'n', keys: ['before'] })
    await eventually(() => b.got.includes('before'), 20_000, 'delivery on a cluster')
    await Promise.all(cluster.nodes.map((n) => n.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')))
    await eventually(
      () => b.resets.length > 0,
      20_000,
      'a reset after the pub/sub connections died',
    )
    await eventually(
      async () => {
        await a.bus.publish({ namespace: 'n', keys: ['after'] })
        return b.got.includes('after')
      },
      20_000,
      'delivery after resubscribe',
    )
    await Promise.all([a.bus.close(), b.bus.close()])
  }, 90_000)

  it('locks resources whose text would break a hash tag', async () => {
    const client = createCluster({ rootNodes: cluster.rootNodes })
    await client.connect()
    clients.push(client as unknown as AnyRedisClient)
    const locks = createRedisLockProvider({
      client: client as unknown as AnyRedisClient,
      prefix: 'lk',
    })
    for (const resource of ['}x', '{a}b', 'plain']) {
      const lock = await locks.acquire(resource, { ttl: 600_000 })
      expect(lock?.fence).toBe(1)
      expect(await lock?.release()).toBe(true)
    }
  })
})
