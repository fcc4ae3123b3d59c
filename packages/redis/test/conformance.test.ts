import { runStoreConformance } from '@actor-cache/core/testing'
import { createClient, createCluster } from 'redis'
import { afterAll, beforeAll } from 'vitest'
import { type AnyRedisClient, createRedisStore, type RedisTier } from '../src/index.js'
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
