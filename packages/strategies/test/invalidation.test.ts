import {
  createLocalBusHub,
  glob,
  InvalidKeyError,
  InvalidOptionError,
  parseCacheConfigYaml,
} from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import { createPrismaStore, type PrismaTier } from '@actor-cache/prisma-store'
import {
  type AnyRedisClient,
  createRedisBus,
  createRedisStore,
  type RedisBus,
  type RedisTier,
} from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createTieredCache,
  expandEvent,
  type TieredCache,
  type TieredCacheOptions,
} from '../src/index.js'
import { clockPast, dropPrefix, eventually, postgres, redis, type TestDb, uid } from './helpers.js'

const config = parseCacheConfigYaml(`
strategies:
  primary_core: { strategy: write_through, ttl: 300s }
  flexible_stats: { strategy: write_through, ttl: 1800s }
  derived_stats: { strategy: write_through, ttl: 600s }
invalidation:
  ttl_jitter: 10%
  dependencies:
    derived_stats: [primary_core, flexible_stats]
  events:
    stat_updated:
      - namespace: derived_stats
        keys: ["{entityId}"]
    zone_reset:
      - namespace: primary_core
        patterns: ["zone:{zone}:*"]
    config_changed:
      - namespace: derived_stats
        all: true
    system_event:
      - tags: ["system"]
`)

let db: TestDb
let client: AnyRedisClient
let l2: RedisTier
let l3: PrismaTier
const prefix = `aci${uid()}`
const open: TieredCache[] = []
const buses: RedisBus[] = []

beforeAll(async () => {
  db = await postgres()
  client = await redis()
  l2 = createRedisStore({ client, prefix })
  l3 = createPrismaStore({ prisma: db.prisma, timeout: 60_000 }) // generous: not what is tested
})
afterEach(async () => {
  for (const c of open.splice(0)) await c.close()
  for (const b of buses.splice(0)) await b.close()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await client.close()
  await db?.drop()
})

function cache(options: TieredCacheOptions = {}): TieredCache & { l1: MemCache } {
  const l1 = createMemCache()
  const c = createTieredCache({ config, l1, l2, ...options })
  open.push(c)
  return Object.assign(c, { l1 })
}

/** Cached values of every tier of this instance for `key` (L1, L2). */
async function tiers(c: TieredCache & { l1: MemCache }, ns: string, key: string) {
  return [c.l1.namespace(ns).getSync(key)?.value, (await l2.namespace(ns).get(key))?.value]
}

describe('dependencies', () => {
  it('a write of primary_core invalidates derived_stats of the same key in every tier', async () => {
    const c = cache()
    const derived = c.namespace<number>('derived_stats', { record: false })
    const primary = c.namespace<number>('primary_core', { record: false })
    let computed = 0
    expect(await derived.getOrSet('actor:1', () => ++computed)).toBe(1)
    expect(await derived.getOrSet('actor:2', () => 100)).toBe(100)
    await primary.set('actor:1', 50)
    expect(await tiers(c, 'derived_stats', 'actor:1')).toEqual([undefined, undefined])
    expect(await derived.getOrSet('actor:1', () => ++computed)).toBe(2)
    expect(await derived.get('actor:2')).toBe(100) // other keys untouched
  })

  it('manual invalidation cascades too; cycles are refused by the config loader', async () => {
    const c = cache()
    const derived = c.namespace<string>('derived_stats', { record: false })
    await derived.set('a', 'x')
    await c.invalidate({ namespace: 'flexible_stats', keys: ['a'] })
    expect(await derived.get('a')).toBeUndefined()
    expect(() =>
      parseCacheConfigYaml('invalidation:\n  dependencies:\n    a: [b]\n    b: [a]\n'),
    ).toThrow(/cycle/)
  })
})

describe('events', () => {
  it('expands placeholders; pattern parameters are escaped and cannot widen the pattern', () => {
    const [msg] = expandEvent(config.invalidation, 'zone_reset', { zone: '*' })
    expect(msg?.patterns).toEqual(['zone:\\*:*'])
    expect(() => expandEvent(config.invalidation, 'nope', {})).toThrow(InvalidOptionError)
    expect(() => expandEvent(config.invalidation, 'stat_updated', {})).toThrow(/entityId/)
    expect(() => expandEvent(config.invalidation, 'stat_updated', { entityId: '' })).toThrow(
      InvalidKeyError,
    )
  })

  it('stat_updated drops one key, zone_reset a pattern, config_changed a namespace', async () => {
    const c = cache()
    const derived = c.namespace<number>('derived_stats', { record: false })
    const primary = c.namespace<number>('primary_core', { record: false })
    for (const k of ['actor:1', 'actor:2']) await derived.set(k, 1)
    for (const k of ['zone:a:1', 'zone:a:2', 'zone:b:1', 'zone:*:x']) await primary.set(k, 1)
    await c.invalidateByEvent('stat_updated', { entityId: 'actor:1' })
    expect(await derived.get('actor:1')).toBeUndefined()
    expect(await derived.get('actor:2')).toBe(1)
    await c.invalidateByEvent('zone_reset', { zone: 'a' })
    expect(await primary.get('zone:a:1')).toBeUndefined()
    expect(await primary.get('zone:a:2')).toBeUndefined()
    expect(await primary.get('zone:b:1')).toBe(1)
    await c.invalidateByEvent('zone_reset', { zone: '*' }) // only the literal "*" zone
    expect(await primary.get('zone:b:1')).toBe(1)
    expect(await primary.get('zone:*:x')).toBeUndefined()
    await c.invalidateByEvent('config_changed')
    expect(await derived.get('actor:2')).toBeUndefined()
    expect(await l2.namespace('derived_stats').get('actor:2')).toBeUndefined()
  })
})

describe('patterns and tags', () => {
  it('a pattern never reaches outside its namespace', async () => {
    const c = cache()
    const a = c.namespace<number>('pat_a', { record: false })
    const b = c.namespace<number>('pat_b', { record: false })
    await a.set('x1', 1)
    await b.set('x1', 1)
    await c.invalidate({ namespace: 'pat_a', patterns: [glob`${'x'}*`] })
    expect(await a.get('x1')).toBeUndefined()
    expect(await b.get('x1')).toBe(1)
  })

  it('tags invalidate entries in every namespace and tier, and only entries written before', async () => {
    const c = cache()
    const a = c.namespace<number>('tag_a', { record: false })
    const b = c.namespace<number>('tag_b', { record: false })
    await a.set('k', 1, { tags: ['system'] })
    await b.set('k', 2, { tags: ['system', 'other'] })
    await b.set('untagged', 3)
    await c.invalidateByEvent('system_event')
    expect(await a.get('k')).toBeUndefined()
    expect(await b.get('k')).toBeUndefined()
    expect(await b.get('untagged')).toBe(3)
    await clockPast(Date.now()) // the write below is dated after the invalidation
    await a.set('k', 4, { tags: ['system'] })
    expect(await a.get('k')).toBe(4)
  })

  it('another instance that missed the tag message still sees it through L2', async () => {
    const a = cache()
    const b = cache() // no bus: b never hears anything
    const nsA = a.namespace<number>('tag_c', { record: false })
    const nsB = b.namespace<number>('tag_c', { record: false })
    await nsA.set('k', 1, { tags: ['season'] })
    await a.invalidate({ tags: ['season'] })
    expect(await nsB.get('k')).toBeUndefined()
  })

  it('the store of record keeps its data when caches are invalidated', async () => {
    const c = cache({ l3 })
    const t = c.namespace<string>('kept')
    await t.set('k', 'v', { tags: ['t1'] })
    await c.invalidate({ namespace: 'kept', all: true })
    await c.invalidate({ tags: ['t1'] })
    expect(await t.get('k')).toBe('v')
  })
})

describe('namespace shortcuts', () => {
  it('invalidate, clear, getTTL and setTTL', async () => {
    const c = cache()
    const t = c.namespace<number>('short', { record: false, ttl: 60_000, jitter: 0 })
    const before = Date.now()
    for (const k of ['a', 'b', 'c', 'x1']) await t.set(k, 1)
    const ttl = await t.getTTL('a')
    // the full TTL less the time that passed since the write, however long that was
    expect(ttl).toBeGreaterThanOrEqual(60_000 - (Date.now() - before) - 1)
    expect(ttl).toBeLessThanOrEqual(60_000)
    expect(await t.setTTL('a', 1_000)).toBe(true)
    expect(await t.getTTL('a')).toBeLessThanOrEqual(1_000)
    expect(await t.setTTL('nope', 1_000)).toBe(false)
    await expect(t.setTTL('a', -5)).rejects.toBeInstanceOf(InvalidOptionError)
    await t.invalidate('a')
    await t.invalidate(['b'])
    await t.invalidate({ patterns: ['x*'] })
    expect(await t.getTTL('a')).toBeUndefined()
    expect(await t.has('b')).toBe(false)
    expect(await t.has('x1')).toBe(false)
    expect(await t.has('c')).toBe(true)
    await t.clear()
    expect(await t.has('c')).toBe(false)
    expect(await l2.namespace('short').get('c')).toBeUndefined()
  })
})

describe('namespaces this instance has not used', () => {
  it('an instance without a record can invalidate a write-behind namespace', async () => {
    const c = cache({ namespaces: { wb: { strategy: 'write_behind' } } }) // no L3 here
    await l2.namespace('wb').set('k', 'v')
    await c.invalidate({ namespace: 'wb', keys: ['k'] })
    expect(await l2.namespace('wb').get('k')).toBeUndefined()
  })

  it('an adopted namespace is checked when the application asks for it', async () => {
    const c = cache({ namespaces: { wb2: { strategy: 'write_behind' } } }) // no record here
    await c.invalidate({ namespace: 'wb2', keys: ['k'] })
    expect(() => c.namespace('wb2')).toThrow(/record/)
  })

  it('tag times in L2 outlive the longest TTL the config allows, used here or not', async () => {
    const c = cache({ namespaces: { long_lived: { ttl: 3_600_000 } } })
    const before = Date.now()
    await c.invalidate({ tags: ['season'] })
    const ttl = await l2.namespace('actor-cache.tags').getTTL('season')
    // the longest TTL less the time that passed since the invalidation, however long that was
    expect(ttl).toBeGreaterThanOrEqual(3_600_000 - (Date.now() - before) - 1)
  })
})

describe('across instances', () => {
  it("a write on A is dropped from B's L1 through a local bus hub", async () => {
    const hub = createLocalBusHub()
    const a = cache({ bus: hub.connect('A') })
    const b = cache({ bus: hub.connect('B') })
    const nsA = a.namespace<number>('shared', { record: false })
    const nsB = b.namespace<number>('shared', { record: false })
    await nsA.set('k', 1)
    expect(await nsB.get('k')).toBe(1) // now in B's L1
    await nsA.set('k', 2)
    await eventually(async () => (await nsB.get('k')) === 2, 30_000, 'B to see the write')
  })

  it('through Redis pub/sub, tags included', async () => {
    const busA = createRedisBus({ client, prefix })
    const busB = createRedisBus({ client, prefix })
    buses.push(busA, busB)
    const a = cache({ bus: busA })
    const b = cache({ bus: busB })
    await busA.start()
    await busB.start()
    const nsA = a.namespace<number>('over_redis', { record: false })
    const nsB = b.namespace<number>('over_redis', { record: false })
    await nsA.set('k', 1, { tags: ['g'] })
    expect(await nsB.get('k')).toBe(1)
    await nsA.set('k', 2, { tags: ['g'] })
    await eventually(async () => (await nsB.get('k')) === 2, 30_000, 'B to see the write')
    await a.invalidate({ tags: ['g'] })
    await eventually(async () => (await nsB.get('k')) === undefined, 30_000, 'B to drop the tag')
  })

  it('a bus reset empties L1 (messages may have been lost)', async () => {
    const hub = createLocalBusHub()
    const b = cache({ bus: hub.connect('B') })
    const nsB = b.namespace<number>('reset_me', { record: false })
    await nsB.set('k', 1)
    expect(b.l1.namespace('reset_me').getSync('k')?.value).toBe(1)
    hub.simulateReset('B')
    await eventually(
      () => b.l1.namespace('reset_me').getSync('k') === undefined,
      30_000,
      'L1 reset',
    )
    expect(await nsB.get('k')).toBe(1) // still in L2
  })
})
