/**
 * Write-through copies over a loaded value. A loaded value's version counts loads while the record
 * lacks the key, so it can be above the version the record gives the first write: the write
 * replaces that copy, and must not leave its own value in a tier when another instance's newer
 * write landed meanwhile.
 */
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache, type TieredNamespace } from '../src/index.js'
import {
  type Around,
  dropPrefix,
  fakeClock,
  interceptTier,
  postgres,
  redis,
  type TestDb,
  uid,
} from './helpers.js'

let db: TestDb
let client: AnyRedisClient
const prefix = `wtc${uid()}`

beforeAll(async () => {
  db = await postgres()
  client = await redis()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await client?.close()
  await db?.drop()
})

interface N {
  n: number
}

function instance(clock: ReturnType<typeof fakeClock>, around?: Around): TieredCache {
  const l2 = createRedisStore({ client, prefix })
  return createTieredCache({
    l1: createMemCache({ now: clock.now }),
    l2: around === undefined ? l2 : interceptTier(l2, around),
    l3: createPrismaStore({ prisma: db.prisma }),
    now: clock.now,
    namespaces: { wt: { ttl: 10_000, jitter: 0 } },
  })
}

describe('write-through over a loaded copy with a higher version', () => {
  it('caches the write at the record version', async () => {
    const clock = fakeClock()
    const a = instance(clock).namespace<N>('wt')
    const load = (): N => ({ n: -1 })
    await a.getOrSet('k1', load) // loaded: version 1 in L2
    clock.advance(10_000)
    await a.getOrSet('k1', load) // reloaded over the expired copy: version 2
    expect((await a.set('k1', { n: 1 })).version).toBe(1) // the record's first version
    const entry = await a.getEntry('k1')
    expect(entry).toMatchObject({ value: { n: 1 }, version: 1 })
    expect(entry?.expiresAt).not.toBeNull() // a cached copy, not the record's row
    expect((await createRedisStore({ client, prefix }).namespace('wt').get('k1'))?.version).toBe(1)
  })

  it("drops its copies when another instance's newer write landed while it replaced them", async () => {
    const clock = fakeClock()
    let b: TieredNamespace<N> | undefined
    let raced = false
    // A's delete of the loaded copy waits for B's whole write (record and copies) to land first
    const around: Around = (method, call) => {
      if (method !== 'delete' || raced || b === undefined) return call()
      raced = true
      return b.set('k2', { n: 2 }).then(() => call())
    }
    const a = instance(clock, around).namespace<N>('wt')
    b = instance(clock).namespace<N>('wt')
    const load = (): N => ({ n: -1 })
    await a.getOrSet('k2', load)
    clock.advance(10_000)
    await a.getOrSet('k2', load) // version 2 in L2
    await a.set('k2', { n: 1 }) // records version 1; B records version 2 during the copy
    expect(raced).toBe(true)
    const l2 = await createRedisStore({ client, prefix }).namespace<N>('wt').get('k2')
    expect(l2 === undefined || l2.value.n === 2).toBe(true)
    const fresh = instance(clock).namespace<N>('wt')
    expect(await fresh.get('k2')).toEqual({ n: 2 })
    expect(await a.get('k2')).toEqual({ n: 2 })
  })
})
