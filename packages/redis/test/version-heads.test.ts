import { ConflictError, InvalidOptionError } from '@actor-cache/core'
import { createClient, createCluster } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AnyRedisClient, createRedisStore, type RedisTier } from '../src/index.js'
import { type RedisServer, startCluster, startRedis, type TestCluster } from './servers.js'

let server: RedisServer
let cluster: TestCluster
const clients: AnyRedisClient[] = []
const tiers: Record<string, RedisTier> = {}

beforeAll(async () => {
  ;[server, cluster] = await Promise.all([startRedis(), startCluster(3)])
  const single = createClient({ url: server.url })
  const clustered = createCluster({ rootNodes: cluster.rootNodes })
  await Promise.all([single.connect(), clustered.connect()])
  clients.push(single as unknown as AnyRedisClient, clustered as unknown as AnyRedisClient)
  tiers.single = createRedisStore({ client: single as unknown as AnyRedisClient, prefix: 'vh' })
  tiers.cluster = createRedisStore({
    client: clustered as unknown as AnyRedisClient,
    prefix: 'vh',
  })
}, 60_000)

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  await server?.stop()
  await cluster?.stop()
})

const copy = { expiresAt: null, createdAt: 1, tags: [] as string[], headTtl: 60_000 }
let n = 0
const ns = (): string => `h${++n}`

describe.each(['single', 'cluster'])('version heads (%s)', (which) => {
  const tier = () => tiers[which] as RedisTier

  it('asks for a floor once, then counts 1, 2, 3 from it, whatever version the value held', async () => {
    const s = tier().namespace<string>(ns())
    expect(await s.claimSet('k', 'a', copy)).toEqual({ needsFloor: true })
    expect(await s.get('k')).toBeUndefined() // nothing written without a head or a floor
    const first = await s.claimSet('k', 'a', { ...copy, floor: { version: 0, exists: false } })
    expect(first).toEqual({ applied: true, version: 1, previous: { version: 0, exists: false } })
    // a loaded copy whose version counts loads: the next claimed write replaces it
    await s.set('k', 'loaded', { version: 9 })
    expect(await s.claimSet('k', 'b', copy)).toMatchObject({ applied: true, version: 2 })
    expect(await s.get('k')).toMatchObject({ value: 'b', version: 2 })
    // the head outlives the value: deleted, cleared or expired, the count goes on
    await s.delete('k')
    await s.clear()
    await s.claimSet('k', 'c', { ...copy, expiresAt: Date.now() + 50 })
    await new Promise((r) => setTimeout(r, 120))
    expect(await s.get('k')).toBeUndefined()
    expect(await s.claimSet('k', 'd', copy)).toMatchObject({ applied: true, version: 4 })
    // a floor is only used when there is no head
    expect(
      await s.claimSet('k', 'e', { ...copy, floor: { version: 100, exists: true } }),
    ).toMatchObject({ version: 5 })
  })

  it('compare-and-set against the head; a deleted head is absent (0) but keeps its version', async () => {
    const s = tier().namespace<string>(ns())
    const floor = { version: 41, exists: true }
    const err = await s.claimSet('k', 'x', { ...copy, floor, expectedVersion: 40 }).catch((e) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect(err).toMatchObject({ expectedVersion: 40, actualVersion: 41 })
    expect(await s.claimSet('k', 'x', { ...copy, floor, expectedVersion: 41 })).toMatchObject({
      version: 42,
    })
    expect(await s.claimDelete('k', { headTtl: 60_000, expectedVersion: 42 })).toMatchObject({
      applied: true,
      version: 43,
      previous: { version: 42, exists: true },
    })
    expect(await s.get('k')).toBeUndefined()
    await expect(s.claimSet('k', 'y', { ...copy, expectedVersion: 43 })).rejects.toBeInstanceOf(
      ConflictError,
    )
    expect(await s.claimSet('k', 'y', { ...copy, expectedVersion: 0 })).toMatchObject({
      version: 44,
    })
    // an explicit version applies only above the head
    expect(await s.claimSet('k', 'old', { ...copy, version: 44 })).toEqual({
      applied: false,
      version: 44,
    })
    expect(await s.get('k')).toMatchObject({ value: 'y', version: 44 })
    expect(await s.claimSet('k', 'jump', { ...copy, version: 50 })).toMatchObject({
      applied: true,
      version: 50,
    })
  })

  it('a delete of a key absent by its head takes no version, and still removes a cached value', async () => {
    const s = tier().namespace<string>(ns())
    const floor = { version: 4, exists: false }
    expect(await s.claimDelete('k', { headTtl: 60_000, floor })).toEqual({
      applied: false,
      version: 4,
    })
    await s.set('k', 'loaded', { version: 2 })
    expect(await s.claimDelete('k', { headTtl: 60_000, floor })).toMatchObject({ applied: false })
    expect(await s.get('k')).toBeUndefined()
    expect(await s.claimSet('k', 'v', { ...copy, floor })).toMatchObject({ version: 5 })
    expect(await s.claimDelete('k', { headTtl: 60_000 })).toMatchObject({
      applied: true,
      version: 6,
    })
    expect(await s.claimDelete('k', { headTtl: 60_000 })).toEqual({ applied: false, version: 6 })
    expect(await s.claimSet('k', 'w', copy)).toMatchObject({ version: 7 })
  })

  it('a released claim puts the head back, unless a later claim moved it', async () => {
    const s = tier().namespace<string>(ns())
    const floor = { version: 0, exists: false }
    const a = await s.claimSet('k', 'a', { ...copy, floor })
    const b = await s.claimSet('k', 'b', copy)
    if (a.needsFloor === true || b.needsFloor === true) throw new Error('claims need no floor')
    expect(await s.releaseClaim('k', a.version, a.previous ?? floor)).toBe(false)
    expect(await s.releaseClaim('k', b.version, b.previous ?? floor)).toBe(true)
    expect(await s.claimSet('k', 'c', { ...copy, expectedVersion: 1 })).toMatchObject({
      version: 2,
    })
  })

  it('keys whose text would break a hash tag keep value and head in one slot', async () => {
    const s = tier().namespace<string>(ns())
    for (const key of ['}x', '{a}b', '{}', 'plain', '{', 'x{y}z{w}']) {
      const floor = { version: 0, exists: false }
      expect(await s.claimSet(key, key, { ...copy, floor })).toMatchObject({ version: 1 })
      expect(await s.claimSet(key, key, copy)).toMatchObject({ version: 2 })
      expect(await s.claimDelete(key, { headTtl: 1_000 })).toMatchObject({ version: 3 })
    }
  })

  it('rejects bad claims before any I/O', async () => {
    const s = tier().namespace<string>(ns())
    const before = tier().commandsSent
    const bad: unknown[] = [
      { ...copy, headTtl: 0 },
      { ...copy, headTtl: Number.NaN },
      { ...copy, floor: { version: -1, exists: true } },
      { ...copy, floor: { version: 1 } },
      { ...copy, expectedVersion: 1.5 },
      null,
    ]
    for (const options of bad) {
      await expect(s.claimSet('k', 'v', options as typeof copy)).rejects.toBeInstanceOf(
        InvalidOptionError,
      )
    }
    await expect(s.claimSet('', 'v', copy)).rejects.toThrow()
    await expect(s.claimDelete('k', { headTtl: -1 })).rejects.toBeInstanceOf(InvalidOptionError)
    expect(tier().commandsSent).toBe(before)
  })
})
