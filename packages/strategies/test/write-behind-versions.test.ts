import {
  ConflictError,
  createLocalBusHub,
  createMemoryWriteQueue,
  QueueFullError,
} from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, type PrismaTier } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore, type RedisTier } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache, type TieredCacheOptions } from '../src/index.js'
import { dropPrefix, postgres, redis, type TestDb, uid } from './helpers.js'

// One meaning of "version" under write_behind: each key counts 1, 2, 3, … as under write_through,
// through cache misses, deletes, other instances' writes and loaded copies.

let db: TestDb
let client: AnyRedisClient
const prefix = `wbv${uid()}`
let l2: RedisTier
let l3: PrismaTier
const open: TieredCache[] = []

beforeAll(async () => {
  db = await postgres()
  client = await redis()
  l2 = createRedisStore({ client, prefix })
  l3 = createPrismaStore({ prisma: db.prisma, timeout: 60_000 })
})
afterEach(async () => {
  for (const c of open.splice(0)) await c.close()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await client.close()
  await db?.drop()
})

function cache(options: TieredCacheOptions = {}, withL2 = true): TieredCache {
  const c = createTieredCache({
    l1: createMemCache(),
    ...(withL2 ? { l2 } : {}),
    l3,
    writeBehind: { autoStart: false },
    ...options,
  })
  open.push(c)
  return c
}

let n = 0
const ns = (): string => `v${++n}_${uid().slice(0, 6)}`
const behind = { strategy: 'write_behind' } as const

describe.each([
  ['L1 + L2 + record', true],
  ['L1 + record', false],
])('write_behind versions (%s)', (_, withL2) => {
  it('count 1, 2, 3 through cache misses, a delete and a re-creation; the record agrees', async () => {
    const c = cache({}, withL2)
    const name = ns()
    const t = c.namespace<string>(name, behind)
    const seen: number[] = []
    seen.push((await t.set('k', 'a')).version)
    seen.push((await t.set('k', 'b')).version)
    await c.invalidate({ namespace: name, keys: ['k'] }) // every cached copy goes
    seen.push((await t.set('k', 'c')).version)
    expect(await t.delete('k')).toBe(true)
    await c.flush()
    seen.push((await t.set('k', 'd', { expectedVersion: 0 })).version)
    expect(seen).toEqual([1, 2, 3, 5])
    expect((await t.getEntry('k'))?.version).toBe(5)
    await expect(t.set('k', 'x', { expectedVersion: 4 })).rejects.toBeInstanceOf(ConflictError)
    expect((await t.set('k', 'e', { expectedVersion: 5 })).version).toBe(6)
    await c.flush()
    expect(await l3.namespace(name).get('k')).toMatchObject({ value: 'e', version: 6 })
  })

  it("continue the record's versions for a key written before (a new instance, no head)", async () => {
    const name = ns()
    await l3.namespace(name).set('k', 'old', { version: 41 })
    await l3.namespace(name).set('gone', 'old', { version: 7 })
    await l3.namespace(name).deleteVersions([{ key: 'gone', version: 8 }])
    const t = cache({}, withL2).namespace<string>(name, behind)
    expect(await t.set('k', 'new')).toEqual({ applied: true, version: 42 })
    // a tombstone keeps its version: the key is absent, and its next version is above it
    await expect(t.set('gone', 'x', { expectedVersion: 8 })).rejects.toBeInstanceOf(ConflictError)
    expect(await t.set('gone', 'back', { expectedVersion: 0 })).toEqual({
      applied: true,
      version: 9,
    })
  })

  it('a loaded copy (its version counts loads) gives way to the first write, at version 1', async () => {
    const c = cache({}, withL2)
    const name = ns()
    let loads = 0
    const t = c.namespace<string>(name, { ...behind, loader: () => `loaded${++loads}` })
    expect(await t.get('k')).toBe('loaded1')
    await c.invalidate({ namespace: name, keys: ['k'] })
    expect(await t.get('k')).toBe('loaded2')
    expect(await t.set('k', 'written')).toEqual({ applied: true, version: 1 })
    expect(await t.get('k')).toBe('written')
    if (withL2) expect(await l2.namespace(name).get('k')).toMatchObject({ value: 'written' })
    expect((await t.set('k', 'again')).version).toBe(2)
    await c.flush()
    expect(await l3.namespace(name).get('k')).toMatchObject({ value: 'again', version: 2 })
  })

  it('a delete of an absent key takes no version', async () => {
    const c = cache({}, withL2)
    const name = ns()
    const t = c.namespace<string>(name, behind)
    expect(await t.delete('k')).toBe(false)
    expect((await t.set('k', 'a')).version).toBe(1)
    expect(await t.delete('k')).toBe(true)
    expect(await t.delete('k')).toBe(false)
    expect((await t.set('k', 'b')).version).toBe(3)
    await c.flush()
    expect(await l3.namespace(name).get('k')).toMatchObject({ value: 'b', version: 3 })
  })

  it('a write the full queue refused leaves the version where it was', async () => {
    const c = cache({ queue: createMemoryWriteQueue({ capacity: 1 }) }, withL2)
    const name = ns()
    const t = c.namespace<string>(name, behind)
    expect((await t.set('k', 'a')).version).toBe(1)
    await expect(t.set('k', 'b', { expectedVersion: 1 })).rejects.toBeInstanceOf(QueueFullError)
    await c.flush()
    expect((await t.set('k', 'c', { expectedVersion: 1 })).version).toBe(2)
  })
})

describe('write_behind versions with L1 as the only cache tier', () => {
  it('a key read from the record starts its head there: its next write reads no version', async () => {
    let floorReads = 0
    const counting = new Proxy(l3, {
      get(target, prop) {
        if (prop !== 'namespace') return Reflect.get(target, prop)
        return (name: string, o?: object) =>
          new Proxy(target.namespace(name, o), {
            get(store, p) {
              const v = Reflect.get(store, p)
              if (typeof v !== 'function') return v
              if (p !== 'versionFloors') return v.bind(store)
              return (...args: unknown[]) => {
                floorReads++
                return v.apply(store, args)
              }
            },
          })
      },
    })
    const name = ns()
    await l3.namespace(name).set('read', 'old', { version: 41 })
    await l3.namespace(name).set('unread', 'old', { version: 7 })
    const t = cache({ l3: counting }, false).namespace<string>(name, behind)
    expect(await t.get('read')).toBe('old')
    expect(await t.set('read', 'new')).toEqual({ applied: true, version: 42 })
    expect(floorReads).toBe(0)
    // a key this instance never read still reads where it stands (and the counter sees it)
    expect(await t.set('unread', 'new')).toEqual({ applied: true, version: 8 })
    expect(floorReads).toBe(1)
  })
})

describe('write_behind versions across instances (shared L2)', () => {
  it('two instances writing one key take every version once, in order', async () => {
    const hub = createLocalBusHub()
    const queue = createMemoryWriteQueue()
    const name = ns()
    const a = cache({ queue, bus: hub.connect() }).namespace<number>(name, behind)
    const b = cache({ queue, bus: hub.connect() }).namespace<number>(name, behind)
    const versions = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).set('k', i)),
    )
    expect(versions.map((r) => r.version).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 1),
    )
    // compare-and-set from both sides: exactly one of two racing writes at one version wins
    const race = await Promise.allSettled([
      a.set('k', 100, { expectedVersion: 40 }),
      b.set('k', 200, { expectedVersion: 40 }),
    ])
    expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    expect((await a.getEntry('k'))?.version).toBe(41)
  })

  it('a key whose head Redis lost continues from the record and the unflushed writes', async () => {
    const c = cache()
    const name = ns()
    const t = c.namespace<string>(name, behind)
    await t.set('k', 'a')
    await c.flush()
    await t.set('k', 'b') // unflushed
    await (client as unknown as { unlink(k: string): Promise<number> }).unlink(
      `${prefix}:#head:${name}:k`,
    )
    expect((await t.set('k', 'c')).version).toBe(3)
  })
})
