/**
 * The store's single-row statements on a client of `connectPostgres` go to the adapter's own `pg`
 * pool as named prepared statements; on a client built by the user, through Prisma. Both paths
 * must give the same results and the same errors, and `$disconnect` must close what the direct
 * path used. (The conformance suite and the unmigrated-database faults also run on both.)
 */
import { randomUUID } from 'node:crypto'
import {
  ActorCacheError,
  type Codec,
  defaultCodec,
  TierUnavailableError,
  TimeoutError,
} from '@actor-cache/core'
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { classifyFailure, sqlState } from '../src/classify-error.js'
import { connectPostgres, type PrismaClient } from '../src/client.js'
import { directQueries } from '../src/direct-pool.js'
import { PrismaClient as GeneratedClient } from '../src/generated/prisma/client.js'
import { createPrismaStore, migrate, type PrismaStore } from '../src/index.js'
import { DATABASE_URL } from './db.js'
import { poll, waitFor } from './pg-cluster.js'
import { rejection } from './rejection.js'

const schema = `ac_direct_${randomUUID().replaceAll('-', '').slice(0, 10)}`
const BOUND = 60_000
/** A codec whose text PostgreSQL refuses (NUL): a statement error, not an outage. */
const nulCodec: Codec = { ...defaultCodec, encode: () => 'a\u0000b' }

let admin: pg.Client
const clients: PrismaClient[] = []

/** A client as users build one: Prisma raw queries. */
function userBuilt(options = ''): PrismaClient {
  const client = new GeneratedClient({
    adapter: new PrismaPg(
      { connectionString: DATABASE_URL, options: `-c search_path=${schema} ${options}` },
      { schema },
    ),
  })
  clients.push(client)
  return client
}

/** A client of connectPostgres, connected (so the direct path is there from the first call). */
async function direct(options: Parameters<typeof connectPostgres>[1] = {}): Promise<PrismaClient> {
  const client = await connectPostgres(DATABASE_URL, { schema, ...options })
  clients.push(client)
  await client.$connect()
  expect(directQueries(client)).toBeDefined()
  return client
}

/** Holds a lock on `key`'s row of namespace `ns` until the returned function is called. */
async function lockRow(ns: string, key: string): Promise<() => Promise<void>> {
  await admin.query('BEGIN')
  const r = await admin.query(
    `SELECT 1 FROM "${schema}".ac_cache_entries WHERE namespace = $1 AND key = $2 FOR UPDATE`,
    [ns, key],
  )
  expect(r.rowCount).toBe(1)
  return async () => {
    await admin.query('ROLLBACK')
  }
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (error) {
    throw new Error(
      `these tests need PostgreSQL at ${DATABASE_URL} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  await admin.query(`CREATE SCHEMA "${schema}"`)
  await migrate(await direct())
}, BOUND)

afterAll(async () => {
  for (const client of clients) await client.$disconnect()
  await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await admin?.end()
})

describe('which path a store takes', () => {
  it('sends single-row statements of a connectPostgres client to its pool, prepared', async () => {
    // one connection: the pool Prisma queries through is the one the statements were prepared on
    const prisma = await direct({ max: 1 })
    expect(directQueries(prisma)).toBeDefined()
    const raw = vi.spyOn(prisma, '$queryRawUnsafe')
    const executed = vi.spyOn(prisma, '$executeRawUnsafe')
    const store = createPrismaStore({ prisma }).namespace<{ hp: number }>('paths')
    const first = await store.set('a', { hp: 1 })
    await store.set('a', { hp: 2 }, { expectedVersion: first.version })
    await store.set('a', { hp: 3 }, { version: 10 })
    expect((await store.get('a'))?.value).toEqual({ hp: 3 })
    expect(await store.exists('a')).toBe(true)
    expect(await store.setTTL('a', 60_000)).toBe(true)
    expect(await store.getTTL('a')).toBeGreaterThan(0)
    expect(await store.delete('a')).toBe(true)
    expect(raw).not.toHaveBeenCalled()
    expect(executed).not.toHaveBeenCalled()
    raw.mockRestore()
    const prepared = await prisma.$queryRawUnsafe<{ name: string }[]>(
      `SELECT name FROM pg_prepared_statements WHERE name LIKE 'actor_cache_%'`,
    )
    // plain, compare-and-set and versioned writes, get, exists, TTL read and write, delete
    expect(prepared.length).toBe(8)
  })

  it('runs them through Prisma on a client the user built', async () => {
    const prisma = userBuilt()
    expect(directQueries(prisma)).toBeUndefined()
    const raw = vi.spyOn(prisma, '$queryRawUnsafe')
    const store = createPrismaStore({ prisma }).namespace<number>('paths')
    await store.set('b', 1)
    expect(await store.get('b')).toMatchObject({ value: 1, version: 1 })
    expect(raw).toHaveBeenCalledTimes(2)
  })

  it('gives the same entries and results on both paths', async () => {
    const stores = [
      createPrismaStore({ prisma: await direct() }).namespace<{ n: number }>('same_direct'),
      createPrismaStore({ prisma: userBuilt() }).namespace<{ n: number }>('same_prisma'),
    ]
    const seen = await Promise.all(stores.map(async (store) => run(store)))
    expect(seen[0]).toEqual(seen[1])
  })
})

/** A sequence of single-row calls, with what each returned (times left out). */
async function run(store: PrismaStore<{ n: number }>): Promise<unknown[]> {
  const out: unknown[] = []
  out.push(await store.set('k', { n: 1 }, { ttl: 60_000, tags: ['t1', 't2'] }))
  out.push(await store.set('k', { n: 2 }, { expectedVersion: 1 }))
  out.push(await store.set('k', { n: 3 }, { expectedVersion: 0 }).catch((e: Error) => e.name))
  out.push(await store.set('k', { n: 4 }, { version: 2 }))
  out.push(await store.set('k', { n: 5 }, { version: 7 }))
  const entry = await store.get('k')
  out.push({ ...entry, createdAt: typeof entry?.createdAt })
  out.push(await store.get('absent'))
  out.push(await store.delete('k'), await store.delete('k'), await store.exists('k'))
  return out
}

describe('errors on the direct path', () => {
  it('a statement or lock timeout is unavailable, with the same SQLSTATE on both paths', async () => {
    const ns = 'locked'
    const seed = createPrismaStore({ prisma: await direct() }).namespace<number>(ns)
    await seed.set('k', 0)
    const stores = [
      createPrismaStore({ prisma: await direct({ statementTimeout: 200 }), timeout: BOUND }),
      createPrismaStore({
        prisma: userBuilt('-c statement_timeout=200 -c lock_timeout=200'),
        timeout: BOUND,
      }),
    ]
    const release = await lockRow(ns, 'k')
    try {
      for (const tier of stores) {
        const error = await rejection(tier.namespace<number>(ns).set('k', 1), TierUnavailableError)
        expect(error.tier).toBe('postgres')
        expect(['55P03', '57014']).toContain(sqlState(error.cause))
        expect(classifyFailure(error.cause)).toBe('unavailable')
      }
    } finally {
      await release()
    }
    expect(await seed.get('k')).toMatchObject({ value: 0, version: 1 })
  })

  it("the store's own deadline holds; the write's outcome is unknown, not failed", async () => {
    const ns = 'deadline'
    const seed = createPrismaStore({ prisma: await direct() }).namespace<number>(ns)
    await seed.set('k', 0)
    // the server would wait for the lock far longer than the store waits for the call
    const prisma = await direct({ statementTimeout: BOUND })
    const store = createPrismaStore({ prisma, timeout: 300 }).namespace<number>(ns)
    const release = await lockRow(ns, 'k')
    let error: TierUnavailableError
    try {
      error = await rejection(store.set('k', 1), TierUnavailableError)
    } finally {
      await release()
    }
    expect(error.cause).toBeInstanceOf(TimeoutError)
    // the statement went on once the lock was released: it applied after the call gave up
    await waitFor(
      'the abandoned write applies',
      async () => (await seed.get('k'))?.value === 1,
      BOUND,
    )
  })

  it('a refused value is a statement error: untyped, the SQLSTATE readable, on both paths', async () => {
    for (const prisma of [await direct(), userBuilt()]) {
      const store = createPrismaStore({ prisma }).namespace('refused', { codec: nulCodec })
      const error = await store.set('k', 'x').catch((e: unknown) => e)
      expect(error).not.toBeInstanceOf(ActorCacheError)
      expect(sqlState(error)).toBe('22021')
      expect(classifyFailure(error)).toBe('statement')
    }
  })

  it('an unreachable server is E_TIER_UNAVAILABLE through the pool', async () => {
    const prisma = await connectPostgres('postgresql://postgres@127.0.0.1:1/none', {
      connectionTimeoutMillis: 300,
    })
    clients.push(prisma)
    await prisma.$connect()
    expect(directQueries(prisma)).toBeDefined()
    const store = createPrismaStore({ prisma, timeout: BOUND }).namespace('ns')
    for (const op of [() => store.get('k'), () => store.set('k', 1), () => store.delete('k')]) {
      await expect(op()).rejects.toMatchObject({ code: 'E_TIER_UNAVAILABLE', tier: 'postgres' })
    }
  })
})

describe('closing', () => {
  it('$disconnect closes the pool the direct path used, also after a reconnect', async () => {
    const app = `ac_direct_${randomUUID().replaceAll('-', '').slice(0, 8)}`
    const u = new URL(DATABASE_URL)
    u.searchParams.set('application_name', app)
    const prisma = await connectPostgres(u.toString(), { schema, max: 3 })
    const sessions = async () =>
      Number(
        (
          await admin.query(
            'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1',
            [app],
          )
        ).rows[0]?.n,
      )
    const store = createPrismaStore({ prisma }).namespace<number>('closing')
    for (let round = 0; round < 2; round++) {
      // the first call connects Prisma (and with it the pool); the others take the pool
      await Promise.all([1, 2, 3].map((i) => store.set(`k${i}`, i)))
      await Promise.all([1, 2, 3].map((i) => store.get(`k${i}`)))
      expect(directQueries(prisma)).toBeDefined()
      expect(await sessions()).toBeGreaterThan(0)
      await prisma.$disconnect()
      expect(directQueries(prisma)).toBeUndefined()
      expect(await poll(async () => (await sessions()) === 0, BOUND)).toBe(true)
    }
  })
})
