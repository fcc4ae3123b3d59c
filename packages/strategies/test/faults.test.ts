/**
 * Faults under a TieredCache: PostgreSQL unreachable under write-behind load (R7), Redis killed
 * and restarted under reads (R1). PostgreSQL is reached through a TCP proxy the test can cut;
 * Redis is a private redis-server on a port of its own.
 */
import { createMemoryWriteQueue, QueueFullError } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import { createRedisStore } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache } from '../src/index.js'
import { eventually, postgres, redis, type TestDb } from './helpers.js'
import { privateRedis, type RedisServer, TcpProxy } from './servers.js'

let db: TestDb
let proxy: TcpProxy

beforeAll(async () => {
  db = await postgres()
  const url = new URL(db.url)
  proxy = new TcpProxy(url.hostname, Number(url.port || 5432))
  await proxy.start()
})
afterAll(async () => {
  await proxy?.close()
  await db?.drop()
})

describe('PostgreSQL unreachable under write-behind load (R7)', () => {
  it('bounds the queue, rejects at the cap with E_QUEUE_FULL, drains after recovery', async () => {
    const url = new URL(db.url)
    url.port = String(proxy.port)
    // The proxy refuses and drops connections at once, so PostgreSQL "down" fails fast whatever
    // these bounds are; they are generous so that a slow PostgreSQL after recovery (a loaded
    // machine) is not taken for a failing one.
    const prisma = await connectPostgres(url.toString(), {
      schema: db.schema,
      connectionTimeoutMillis: 10_000,
      statementTimeout: 30_000,
    })
    const capacity = 300
    const l1 = createMemCache()
    const cache = createTieredCache({
      l1,
      l3: createPrismaStore({ prisma, timeout: 30_000 }),
      queue: createMemoryWriteQueue({ capacity }),
      writeBehind: { interval: 20, linger: 0, retryBase: 20, retryMax: 200, batchSize: 100 },
    })
    const ns = cache.namespace<{ n: number }>('r7', { strategy: 'write_behind' })
    proxy.block()
    let acked = 0
    let rejected = 0
    const started = Date.now()
    for (let i = 0; i < 400; i++) {
      try {
        await ns.set(`k${i}`, { n: i })
        acked++
      } catch (error) {
        expect(error).toBeInstanceOf(QueueFullError)
        rejected++
      }
    }
    expect(acked).toBe(capacity)
    expect(rejected).toBe(400 - capacity)
    expect(Date.now() - started).toBeLessThan(20_000) // nobody hung on the dead database
    // a rejected write is not served from the caches either (the key is dropped there); a read
    // now would ask the unreachable record, so the read is checked after the recovery
    expect(l1.namespace('r7').getSync('k399')).toBeUndefined()
    // the flusher must have met the dead database before it comes back: wait for that, rather
    // than hoping the loop above gave the flusher's timer a turn
    await eventually(
      () => (cache.stats().writeBehind?.failures ?? 0) > 0,
      30_000,
      'the flusher to fail against the unreachable database',
    )
    proxy.unblock()
    const check = createPrismaStore({ prisma: db.prisma, timeout: 60_000 }).namespace<{
      n: number
    }>('r7')
    await eventually(
      async () => {
        const rows = await check.getMany(Array.from({ length: capacity }, (_, i) => `k${i}`))
        return rows.every((r, i) => r?.value.n === i)
      },
      60_000,
      'the backlog to drain into PostgreSQL',
    )
    expect(await check.get('k399')).toBeUndefined()
    expect(await ns.get('k399')).toBeUndefined()
    expect(cache.stats().writeBehind?.failures).toBeGreaterThan(0)
    await cache.close()
    await prisma.$disconnect()
  }, 180_000)
})

const servers: RedisServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill()
})

describe('Redis killed and restarted under reads (R1)', () => {
  it('L1 keeps serving, misses fall back to the loader in bounded time, L2 recovers', async () => {
    const server = await privateRedis()
    servers.push(server)
    const client = await redis(server.url)
    const cache = createTieredCache({
      l1: createMemCache(),
      l2: createRedisStore({
        client,
        commandTimeout: 200,
        breaker: { threshold: 3, resetTimeout: 200 },
      }),
    })
    let loads = 0
    const ns = cache.namespace<string>('r1', {
      record: false,
      ttl: 60_000,
      grace: 60_000,
      loader: (key) => {
        loads++
        return `loaded:${key}`
      },
    })
    expect(await ns.get('hot')).toBe('loaded:hot')
    await cache.settle() // 'hot' is in L2 and L1 before Redis goes
    await server.kill() // gone for sure: the reads below cannot reach it any more
    const started = Date.now()
    for (let i = 0; i < 100; i++) expect(await ns.get('hot')).toBe('loaded:hot')
    // a cold key: L2 fails fast, the loader answers, the value is still cached in L1
    expect(await ns.get('cold')).toBe('loaded:cold')
    expect(await ns.get('cold')).toBe('loaded:cold')
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(loads).toBe(2)
    expect(ns.stats().errors).toBeGreaterThan(0)
    await server.start()
    await eventually(
      async () => {
        await ns.set('after', 'restart').catch(() => undefined)
        return (
          (
            await createRedisStore({ client })
              .namespace('r1')
              .get('after')
              .catch(() => undefined)
          )?.value === 'restart'
        )
      },
      60_000,
      'L2 to take writes again',
    )
    await cache.close()
    await client.close()
    await server.kill()
  }, 180_000)
})
