import { randomUUID } from 'node:crypto'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { as, startTestServer, tempDir } from './helpers.js'

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const id = randomUUID().replaceAll('-', '').slice(0, 10)
const schema = `demo_server_${id}`
const prefix = `demo-test-${id}`

type Admin = Awaited<ReturnType<typeof connectPostgres>>
const newRedis = () =>
  createClient({ url: REDIS_URL, socket: { connectTimeout: 3000, reconnectStrategy: false } })
type RedisClient = ReturnType<typeof newRedis>
let admin: Admin | undefined
let redis: RedisClient | undefined
let server: DemoServer | undefined
let removeDir: (() => Promise<void>) | undefined

async function needPostgres(): Promise<Admin> {
  const client = await connectPostgres(DATABASE_URL, { connectionTimeoutMillis: 3000 })
  try {
    await client.$executeRawUnsafe(`CREATE SCHEMA "${schema}"`)
    return client
  } catch (error) {
    await client.$disconnect()
    throw new Error(
      `this test needs PostgreSQL at ${DATABASE_URL} with the database "test" (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
}

async function needRedis(): Promise<RedisClient> {
  const client = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 3000, reconnectStrategy: false },
  })
  client.on('error', () => {})
  try {
    await client.connect()
    return client
  } catch (error) {
    throw new Error(
      `this test needs Redis at ${REDIS_URL} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
}

async function keysWithPrefix(client: RedisClient): Promise<string[]> {
  const keys: string[] = []
  for await (const batch of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) {
    keys.push(...batch)
  }
  return keys
}

beforeAll(async () => {
  admin = await needPostgres()
  redis = await needRedis()
  const dir = await tempDir()
  removeDir = dir.remove
  const url = new URL(DATABASE_URL)
  url.searchParams.set('schema', schema)
  server = await startTestServer(dir.path, {
    databaseUrl: url.toString(),
    redisUrl: REDIS_URL,
    env: { ...process.env, REDIS_PREFIX: prefix },
  })
})

afterAll(async () => {
  await server?.close()
  if (redis !== undefined) {
    const keys = await keysWithPrefix(redis)
    for (let i = 0; i < keys.length; i += 500) await redis.unlink(keys.slice(i, i + 500))
    await redis.close()
  }
  await admin?.$executeRawUnsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await admin?.$disconnect()
  await removeDir?.()
})

describe('with Redis and PostgreSQL', () => {
  it('uses Redis as L2 and PostgreSQL as the store of record', async () => {
    const stats = (await server!.app.inject({ url: '/stats', headers: as('admin') })).json()
    expect(stats.tiers.l2).toMatch(`Redis at ${REDIS_URL}`)
    expect(stats.tiers.record).toMatch(/PostgreSQL/)
    const rows = await admin!.$queryRawUnsafe<{ n: bigint }[]>(
      `SELECT count(*) AS n FROM "${schema}".ac_cache_entries WHERE namespace = 'primary_core'`,
    )
    expect(Number(rows[0]?.n)).toBe(40)
  })

  it('serves, writes with expected versions and recomputes derived stats after a config change', async () => {
    const s = server!
    const read = await fetch(`${s.url}/actors/12`, { headers: as('gm') })
    expect(read.status).toBe(200)
    const { version } = (await read.json()) as { version: number }
    const patch = await s.app.inject({
      method: 'PATCH',
      url: '/actors/12',
      headers: { ...as('gm'), 'if-match': `"${version}"` },
      payload: { primaryCore: { strength: 77 } },
    })
    expect(patch.json()).toMatchObject({ version: version + 1, primaryCore: { strength: 77 } })
    const conflict = await s.app.inject({
      method: 'PATCH',
      url: '/actors/12',
      headers: { ...as('gm'), 'if-match': `"${version}"` },
      payload: { primaryCore: { strength: 1 } },
    })
    expect(conflict.json()).toMatchObject({ expectedVersion: version, actualVersion: version + 1 })
    const verify = await s.app.inject({ url: '/actors/12/verify', headers: as('gm') })
    expect(verify.json()).toMatchObject({ ok: true, head: { version: version + 1 } })
    const history = await s.app.inject({ url: '/actors/12/history', headers: as('gm') })
    expect(history.json().records.at(-1)).toMatchObject({ userId: 'gm-1', changeType: 'update' })

    const derived = () => s.app.inject({ url: '/actors/12/derived', headers: as('player') })
    const before = (await derived()).json()
    expect((await derived()).json().computed).toBe(false)
    const config = await s.app.inject({
      method: 'PATCH',
      url: '/config',
      headers: as('admin'),
      payload: { config: { attackPerLevel: 5 } },
    })
    expect(config.statusCode).toBe(200)
    const after = (await derived()).json()
    expect(after.computed).toBe(true)
    expect(after.derivedStats.attack).toBeGreaterThan(before.derivedStats.attack)
    expect((await keysWithPrefix(redis!)).some((k) => k.includes('primary_core'))).toBe(true)
  })

  it("inspects an actor in L1, Redis and PostgreSQL, and streams L2's circuit state", async () => {
    const s = server!
    // a write-through write puts the value in every tier
    await s.app.inject({
      method: 'PATCH',
      url: '/actors/15',
      headers: as('gm'),
      payload: { primaryCore: { hp: 99 } },
    })
    const body = (await s.app.inject({ url: '/actors/15/inspect', headers: as('gm') })).json()
    const tiers = body.namespaces.primary_core.tiers
    expect(Object.keys(tiers)).toEqual(['l1', 'l2', 'record'])
    for (const tier of ['l1', 'l2', 'record']) {
      expect(tiers[tier], tier).toMatchObject({ state: 'present', version: 2 })
    }
    expect(tiers.l2.ttlMs).toBeGreaterThan(0)
    expect(tiers.l2.ttlMs).toBeLessThanOrEqual(300_000)
    const stream = await fetch(`${s.url}/dashboard/events?token=demo-admin-token`)
    const reader = stream.body!.getReader()
    let text = ''
    for (let i = 0; i < 100 && !/data: .*\n\n/.test(text); i++) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    await reader.cancel()
    const snapshot = JSON.parse(/data: (.*)\n\n/.exec(text)![1]!)
    expect(snapshot.circuit).toEqual({ l2: 'closed' })
  })

  it('reports every component ready', async () => {
    const ready = (await server!.app.inject({ url: '/health/ready' })).json()
    expect(ready).toMatchObject({ status: 'ok', ready: true, readyForWrites: true })
    expect(Object.keys(ready.components)).toEqual(expect.arrayContaining(['l1', 'l2', 'record']))
  })
})
