/**
 * The store of record cannot answer (PostgreSQL cut off behind a TCP proxy), or holds a row it
 * cannot decode. A read must never say "not found" for a key the record may hold, getOrSet must
 * not call its loader for it, and nothing may be cached over the real row.
 */
import { ActorCacheError, createMemoryDeadLetters } from '@actor-cache/core'
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

describe('connections cut under write load', () => {
  it('write_through and write_behind callers get typed errors only; nothing is dead-lettered for an outage', async () => {
    const name = `rc${uid()}`
    const deadLetters = createMemoryDeadLetters()
    const cache = createTieredCache({
      l1: createMemCache(),
      l3: createPrismaStore({ prisma, timeout: 2_000 }),
      deadLetters,
      // an outage counted as a failed attempt would dead-letter within three quick retries
      writeBehind: { interval: 10, linger: 0, retryBase: 10, retryMax: 100, maxAttempts: 3 },
      namespaces: {
        [`${name}t`]: { strategy: 'write_through' },
        [`${name}b`]: { strategy: 'write_behind' },
      },
    })
    const through = cache.namespace<{ n: number }>(`${name}t`)
    const behind = cache.namespace<{ n: number }>(`${name}b`)
    const raw: unknown[] = []
    const codes = new Map<string, number>()
    /** Per key: the last acknowledged value, and values whose write failed after it. */
    const acked = new Map<string, number>()
    const unknown = new Map<string, Set<number>>()
    let n = 0
    const write = async (ns: typeof through, key: string): Promise<void> => {
      const value = ++n
      try {
        await ns.set(key, { n: value })
        acked.set(`${ns.name}/${key}`, value)
        unknown.delete(`${ns.name}/${key}`)
      } catch (error) {
        if (!(error instanceof ActorCacheError)) raw.push(error)
        else codes.set(error.code, (codes.get(error.code) ?? 0) + 1)
        const u = unknown.get(`${ns.name}/${key}`) ?? new Set<number>()
        u.add(value)
        unknown.set(`${ns.name}/${key}`, u)
      }
    }
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    for (let cycle = 0; cycle < 4; cycle++) {
      const writers = [through, behind].flatMap((ns) =>
        keys.map(async (key) => {
          for (let i = 0; i < 5; i++) await write(ns, key)
        }),
      )
      // cut every connection while the writes are on the wire, then let them back
      setImmediate(() => proxy.block())
      await Promise.all(writers)
      proxy.unblock()
      for (const key of keys) await write(through, key)
    }
    await cache.flush({ timeout: 30_000 })
    expect(raw).toEqual([])
    expect([...codes.keys()].filter((c) => c !== 'E_TIER_UNAVAILABLE')).toEqual([])
    expect(codes.get('E_TIER_UNAVAILABLE') ?? 0).toBeGreaterThan(0)
    expect(await deadLetters.list({ namespace: `${name}b` })).toEqual([])
    expect(cache.stats().writeBehind?.deadLettered).toBe(0)
    // the record holds the last acknowledged write of each key, or a later one whose outcome the
    // caller was told is unknown (write_through: a statement cut off may still have committed)
    const check = createPrismaStore({ prisma }).namespace<{ n: number }>(`${name}b`)
    const checkT = createPrismaStore({ prisma }).namespace<{ n: number }>(`${name}t`)
    for (const key of keys) {
      expect((await check.get(key))?.value.n).toBe(acked.get(`${name}b/${key}`))
      const row = (await checkT.get(key))?.value.n
      const allowed = [acked.get(`${name}t/${key}`), ...(unknown.get(`${name}t/${key}`) ?? [])]
      expect(allowed).toContain(row)
    }
    await cache.close()
  }, 120_000)
})
