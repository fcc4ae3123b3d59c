import { rm } from 'node:fs/promises'
import { parseCacheConfig, type QueuedWrite } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectRedis,
  createRedisBus,
  createRedisLockProvider,
  createRedisStore,
  createRedisWriteQueue,
  type SingleClient,
} from '../src/index.js'
import { eventually, queuedWrite } from './helpers.js'
import { makeCerts, type RedisServer, startRedis, type TestCerts } from './servers.js'

/** The documented minimal ACL: the cache's keys and channels, the commands it sends, nothing else. */
export const MINIMAL_ACL = [
  'on',
  '>cache-secret',
  'resetkeys',
  '~ac:*',
  'resetchannels',
  '&ac:*',
  '-@all',
  '+hello',
  '+ping',
  '+client|setname',
  '+mget',
  '+get',
  '+set',
  '+unlink',
  '+del',
  '+exists',
  '+pttl',
  '+pexpire',
  '+incr',
  '+scan',
  '+evalsha',
  '+eval',
  '+publish',
  '+subscribe',
  '+xadd',
  '+xlen',
  '+xack',
  '+xdel',
  '+xrange',
  '+xreadgroup',
  '+xautoclaim',
  '+xpending',
  '+xgroup|create',
]

let certs: TestCerts
let server: RedisServer
const clients: SingleClient[] = []

const config = (extra: Record<string, unknown> = {}) =>
  parseCacheConfig({
    redis: {
      host: '127.0.0.1',
      port: server.port,
      username: 'cache',
      password: 'cache-secret',
      dial_timeout: '10s', // far above a TLS handshake on a loaded machine
      tls: {
        ca_file: certs.ca,
        cert_file: certs.clientCert,
        key_file: certs.clientKey,
        servername: 'localhost',
      },
      ...extra,
    },
  }).redis!

beforeAll(async () => {
  certs = await makeCerts()
  server = await startRedis({
    tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, authClients: 'yes' },
    args: [
      '--user',
      'default',
      'off',
      '--user',
      'cache',
      ...MINIMAL_ACL,
      '--user',
      'admin',
      'on',
      '>admin-secret',
      '~*',
      '&*',
      '+@all',
    ],
  })
}, 60_000)

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => c.destroy())
  await server?.stop()
  if (certs) await rm(certs.dir, { recursive: true, force: true })
})

describe('TLS and ACL', () => {
  it('works end to end over TLS with the minimal ACL user', async () => {
    const client = await connectRedis(config(), { name: 'actor-cache-test' })
    clients.push(client)
    const store = createRedisStore({ client }).namespace('primary_core')
    await store.set('actor:1', { hp: 10 }, 600_000)
    await store.setMany([
      { key: 'actor:2', value: 2 },
      { key: 'actor:3', value: 3 },
    ])
    expect((await store.getMany(['actor:1', 'actor:2'])).map((e) => e?.value)).toEqual([
      { hp: 10 },
      2,
    ])
    expect(await store.getTTL('actor:1')).toBeGreaterThan(300_000)
    expect(await store.setTTL('actor:1', 1_200_000)).toBe(true)
    expect(await store.exists('actor:2')).toBe(true)
    expect(await store.deletePattern('actor:[23]')).toBe(2)
    expect(await store.clear()).toBe(1)

    const other = await connectRedis(config())
    clients.push(other)
    const sender = createRedisBus({ client, instanceId: 'a' })
    const receiver = createRedisBus({ client: other, instanceId: 'b' })
    const got: string[] = []
    receiver.subscribe({ onInvalidate: (m) => got.push(...(m.keys ?? [])), onReset: () => {} })
    await receiver.start()
    await sender.publish({ namespace: 'primary_core', keys: ['actor:1'] })
    await eventually(() => got.length === 1, 20_000, 'bus delivery over TLS')

    const lock = await createRedisLockProvider({ client }).acquire('actor:1', { ttl: 600_000 })
    expect(lock?.fence).toBe(1)
    expect(await lock?.release()).toBe(true)

    const queue = createRedisWriteQueue<QueuedWrite>({ client, name: 'tls' })
    await queue.enqueue([queuedWrite('k')])
    const [d] = await queue.claim(1, { blockMs: 100 })
    await queue.ack([d!.id])
    expect((await queue.stats()).ready).toBe(0)
    await Promise.all([sender.close(), receiver.close(), queue.close()])
  })

  it('cannot touch keys or channels outside its prefix', async () => {
    const client = await connectRedis(config())
    clients.push(client)
    await expect(client.sendCommand(['SET', 'other:x', '1'])).rejects.toThrow(/NOPERM/)
    await expect(client.sendCommand(['PUBLISH', 'other', '1'])).rejects.toThrow(/NOPERM/)
    await expect(client.sendCommand(['FLUSHALL'])).rejects.toThrow(/NOPERM/)
    await expect(client.sendCommand(['KEYS', '*'])).rejects.toThrow(/NOPERM/)
    await expect(client.sendCommand(['CONFIG', 'GET', 'maxmemory'])).rejects.toThrow(/NOPERM/)
  })

  it('refuses plaintext connections, wrong passwords and unknown certificate authorities with a clear error', async () => {
    await expect(connectRedis(config({ tls: false }))).rejects.toMatchObject({
      code: 'E_TIER_UNAVAILABLE',
      message: expect.stringMatching(/cannot connect to Redis/),
    })
    await expect(connectRedis(config({ password: 'wrong' }))).rejects.toMatchObject({
      code: 'E_TIER_UNAVAILABLE',
      message: expect.stringMatching(/WRONGPASS|invalid username-password/i),
    })
    await expect(
      connectRedis(
        config({
          tls: {
            ca_file: certs.serverCert,
            cert_file: certs.clientCert,
            key_file: certs.clientKey,
          },
        }),
      ),
    ).rejects.toMatchObject({ code: 'E_TIER_UNAVAILABLE' })
  })
})
