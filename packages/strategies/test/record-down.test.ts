/**
 * The store of record cannot answer (PostgreSQL cut off behind a TCP proxy), or holds a row it
 * cannot decode. A read must never say "not found" for a key the record may hold, getOrSet must
 * not call its loader for it, and nothing may be cached over the real row.
 */
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache } from '../src/index.js'
import { fakeClock, postgres, redis, type TestDb, uid } from './helpers.js'
import { TcpProxy } from './servers.js'

let db: TestDb
let proxy: TcpProxy
let prisma: PrismaClient
let client: AnyRedisClient

beforeAll(async () => {
  db = await postgres()
  const url = new URL(db.url)
  proxy = new TcpProxy(url.hostname, Number(url.port || 5432))
  await proxy.start()
  url.port = String(proxy.port)
  prisma = await connectPostgres(url.toString(), {
    schema: db.schema,
    connectionTimeoutMillis: 300,
  })
  client = await redis()
})
afterAll(async () => {
  await prisma?.$disconnect()
  await client?.close()
  await proxy?.close()
  await db?.drop()
})

const code = (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e as { code?: string }).code ?? String(e),
  )

interface Hp {
  hp: number
  fresh?: boolean
}

describe('the store of record cannot answer', () => {
  it('reads fail with E_TIER_UNAVAILABLE, getOrSet calls no loader, nothing is cached over the row', async () => {
    const name = `rd${uid()}`
    const clock = fakeClock()
    const cache = createTieredCache({
      l1: createMemCache({ now: clock.now }),
      l2: createRedisStore({ client, prefix: name }),
      l3: createPrismaStore({ prisma, timeout: 2_000 }),
      now: clock.now,
    })
    const ns = cache.namespace<Hp>(name, { ttl: 60_000 })
    const keys = Array.from({ length: 20 }, (_, i) => `actor:${i}`)
    for (const [i, key] of keys.entries()) await ns.set(key, { hp: 100 + i })
    await ns.invalidate(keys) // no cached copy: reads must ask the record
    proxy.block()
    let loads = 0
    const fallback = (): Hp => {
      loads++
      return { hp: 0, fresh: true }
    }
    const outcomes: (string | undefined)[] = []
    for (const key of keys) {
      outcomes.push(await code(ns.get(key)))
      outcomes.push(await code(ns.getOrSet(key, fallback)))
      outcomes.push(await code(ns.has(key)))
      outcomes.push(await code(ns.getEntry(key)))
    }
    outcomes.push(await code(ns.getMany(keys)))
    outcomes.push(await code(ns.getMany(keys, (ks) => ks.map(fallback))))
    expect(new Set(outcomes)).toEqual(new Set(['E_TIER_UNAVAILABLE']))
    expect(loads).toBe(0)

    proxy.unblock()
    // nothing was cached in their place: every key reads its row
    for (const [i, key] of keys.entries()) {
      expect(await ns.getOrSet(key, fallback)).toEqual({ hp: 100 + i })
    }
    expect(loads).toBe(0)
    await cache.close()
  }, 60_000)

  it('serves a stale value within grace, and fails once grace is over', async () => {
    const name = `rd${uid()}`
    const clock = fakeClock()
    const cache = createTieredCache({
      l1: createMemCache({ now: clock.now }),
      l3: createPrismaStore({ prisma, timeout: 2_000 }),
      now: clock.now,
    })
    const ns = cache.namespace<Hp>(name, { ttl: 10_000, grace: 60_000 })
    await ns.set('actor:7', { hp: 107 })
    clock.advance(20_000) // past the TTL, within grace
    proxy.block()
    expect(await ns.get('actor:7')).toEqual({ hp: 107 })
    expect(await ns.getMany(['actor:7'])).toEqual([{ hp: 107 }])
    expect(ns.stats().staleServed).toBe(2)
    clock.advance(60_000) // grace over
    expect(await code(ns.get('actor:7'))).toBe('E_TIER_UNAVAILABLE')
    proxy.unblock()
    expect(await ns.get('actor:7')).toEqual({ hp: 107 })
    await cache.close()
  }, 60_000)
})

describe('a row the record cannot decode', () => {
  it('get, getMany, getOrSet and getEntry agree: E_DECODE, no loader call', async () => {
    const name = `rd${uid()}`
    const cache = createTieredCache({ l1: createMemCache(), l3: createPrismaStore({ prisma }) })
    const ns = cache.namespace<Hp>(name)
    await ns.set('actor:9', { hp: 9 })
    await ns.invalidate('actor:9')
    await db.prisma.$executeRawUnsafe(
      `UPDATE "${db.schema}".ac_cache_entries SET value = '{not json' WHERE namespace = $1`,
      name,
    )
    let loads = 0
    const fallback = (): Hp => {
      loads++
      return { hp: 0 }
    }
    expect(await code(ns.get('actor:9'))).toBe('E_DECODE')
    expect(await code(ns.getMany(['actor:9']))).toBe('E_DECODE')
    expect(await code(ns.getOrSet('actor:9', fallback))).toBe('E_DECODE')
    expect(await code(ns.getEntry('actor:9'))).toBe('E_DECODE')
    expect(loads).toBe(0)
    await cache.close()
  })
})
