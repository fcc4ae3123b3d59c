import { tieredChannels } from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { Registry } from 'prom-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type CacheMetrics, createCacheMetrics } from '../src/index.js'
import { dropPrefix, eventually, promtool, redis, sample, total, uid } from './helpers.js'

let client: AnyRedisClient
const prefix = `acm${uid()}`
const open: { close(): unknown }[] = []

beforeAll(async () => {
  client = await redis()
})
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await (client as unknown as { close(): Promise<void> }).close()
})

/** An instance of the stack: its own L1, the shared Redis L2. */
function instance(): { cache: TieredCache; l1: MemCache } {
  const l1 = createMemCache({ maxSize: 4 * 1024 * 1024 })
  const cache = createTieredCache({ l1, l2: createRedisStore({ client, prefix }) })
  open.push(cache, l1)
  return { cache, l1 }
}

function track(metrics: CacheMetrics): CacheMetrics {
  open.push(metrics)
  return metrics
}

/** A reproducible mix of reads, loads, writes and deletes over a few keys of `namespace`. */
async function traffic(a: TieredCache, b: TieredCache, namespace: string, ops: number) {
  // mulberry32: the same sequence on every run
  let seed = namespace.length * 7919
  const next = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * n)
  }
  const na = a.namespace<number>(namespace)
  const nb = b.namespace<number>(namespace)
  for (let i = 0; i < ops; i++) {
    const key = `k${next(20)}`
    const ns = next(2) === 0 ? na : nb
    switch (next(6)) {
      case 0:
        await ns.set(key, i)
        break
      case 1:
        await ns.delete(key)
        break
      case 2:
        await ns.getOrSet(key, () => (next(3) === 0 ? undefined : i))
        break
      case 3:
        await ns
          .getOrSet(key, () => {
            throw new Error('source down')
          })
          .catch(() => {})
        break
      default:
        await ns.get(key)
    }
  }
}

describe('counters against a TieredCache over real Redis', () => {
  it('match the cache’s own stats per namespace and tier', async () => {
    const a = instance()
    const b = instance()
    // hits from the events: both instances, per tier as the stores name themselves
    const metrics = track(
      createCacheMetrics({
        namespaces: ['players', 'items'],
        cache: a.cache,
        l1: a.l1,
        hitEvents: true,
      }),
    )
    await traffic(a.cache, b.cache, 'players', 400)
    await traffic(a.cache, b.cache, 'items', 300)
    const text = await metrics.metrics()

    for (const ns of ['players', 'items']) {
      const sa = a.cache.stats().namespaces[ns]!
      const sb = b.cache.stats().namespaces[ns]!
      const sum = (k: keyof typeof sa) => sa[k] + sb[k]
      const hits = (tier: string) =>
        sample(text, 'actor_cache_hits_total', { namespace: ns, tier }) ?? 0
      expect(hits('l1')).toBe(sum('l1Hits'))
      expect(hits('l2') + hits('unflushed')).toBe(sum('lowerHits'))
      expect(hits('record')).toBe(sum('recordHits'))
      expect(sum('lowerHits')).toBeGreaterThan(0) // the other instance's writes, read from Redis
      expect(total(text, 'actor_cache_misses_total', { namespace: ns })).toBe(sum('misses'))
      expect(total(text, 'actor_cache_loads_total', { namespace: ns })).toBe(sum('loads'))
      expect(
        total(text, 'actor_cache_operation_duration_seconds_count', {
          namespace: ns,
          operation: 'load',
        }),
      ).toBe(sum('loads'))
      expect(total(text, 'actor_cache_stale_served_total', { namespace: ns })).toBe(
        sum('staleServed'),
      )
      expect(total(text, 'actor_cache_refreshes_total', { namespace: ns })).toBe(sum('refreshes'))
      expect(
        total(text, 'actor_cache_loads_total', { namespace: ns, outcome: 'error' }),
      ).toBeGreaterThan(0)
      // reads: every hit, every miss, every loader value
      const loaded = total(text, 'actor_cache_loads_total', {
        namespace: ns,
        purpose: 'read',
        outcome: 'value',
      })
      expect(sample(text, 'actor_cache_reads_total', { namespace: ns })).toBe(
        sum('l1Hits') + sum('lowerHits') + sum('recordHits') + sum('misses') + loaded,
      )
      const reads = sample(text, 'actor_cache_reads_total', { namespace: ns })!
      expect(sample(text, 'actor_cache_hit_ratio', { namespace: ns, level: 'l1' })).toBeCloseTo(
        sum('l1Hits') / reads,
        10,
      )
      expect(
        sample(text, 'actor_cache_hit_ratio', { namespace: ns, level: 'overall' }),
      ).toBeCloseTo((sum('l1Hits') + sum('lowerHits') + sum('recordHits')) / reads, 10)
      expect(
        total(text, 'actor_cache_writes_total', {
          namespace: ns,
          operation: 'set',
          outcome: 'applied',
        }),
      ).toBeGreaterThan(0)
      expect(
        total(text, 'actor_cache_writes_total', { namespace: ns, operation: 'delete' }),
      ).toBeGreaterThan(0)
      // the source read at scrape time: this instance only
      expect(sample(text, 'actor_cache_negative_hits_total', { namespace: ns })).toBe(
        sa.negativeHits,
      )
    }
    const l1 = a.l1.stats()
    expect(sample(text, 'actor_cache_l1_bytes')).toBe(l1.bytes)
    expect(sample(text, 'actor_cache_l1_entries')).toBe(l1.entries)
    expect(sample(text, 'actor_cache_l1_max_bytes')).toBe(4 * 1024 * 1024)
  })

  it('count hits from the cache’s stats by default: nothing published on an L1 hit', async () => {
    const a = instance()
    const b = instance()
    await traffic(a.cache, b.cache, 'early', 100) // before the metrics: not counted
    const before = a.cache.stats().namespaces.early!
    const metrics = track(createCacheMetrics({ cache: a.cache }))
    expect(tieredChannels.hit.hasSubscribers).toBe(false)
    await traffic(a.cache, b.cache, 'early', 300)
    const text = await metrics.metrics()
    const after = a.cache.stats().namespaces.early!
    const hits = (tier: string) =>
      sample(text, 'actor_cache_hits_total', { namespace: 'early', tier })
    expect(hits('l1')).toBe(after.l1Hits - before.l1Hits)
    expect(hits('l2') ?? 0).toBe(after.lowerHits - before.lowerHits)
    expect(after.lowerHits - before.lowerHits).toBeGreaterThan(0)
    // reads: this instance's hits, and every miss and loader value of the process
    const loaded = total(text, 'actor_cache_loads_total', {
      namespace: 'early',
      purpose: 'read',
      outcome: 'value',
    })
    const misses = total(text, 'actor_cache_misses_total', { namespace: 'early' })
    expect(sample(text, 'actor_cache_reads_total', { namespace: 'early' })).toBe(
      after.l1Hits - before.l1Hits + (after.lowerHits - before.lowerHits) + misses + loaded,
    )
    expect(() => createCacheMetrics({ hitEvents: false })).toThrow(/hitEvents: false needs cache/)
  })

  it('match stale serves, refresh-ahead runs and absorbed errors', async () => {
    let now = Date.now()
    const l1 = createMemCache({ now: () => now })
    const cache = createTieredCache({
      l1,
      l2: createRedisStore({ client, prefix }),
      now: () => now,
      namespaces: { fresh: { ttl: 1000, grace: 600_000, refreshAhead: true } },
    })
    open.push(cache, l1)
    const metrics = track(createCacheMetrics({ cache }))
    const ns = cache.namespace<number>('fresh')
    const refreshed: Promise<unknown>[] = []
    for (let i = 0; i < 10; i++) await ns.getOrSet(`f${i}`, () => i)
    now += 950 // near expiry: reads with a loader refresh ahead in the background
    for (let i = 0; i < 10; i++) {
      refreshed.push(ns.getOrSet(`f${i}`, () => i + 100))
    }
    await Promise.all(refreshed)
    await eventually(
      () => (cache.stats().namespaces.fresh?.refreshes ?? 0) > 0,
      10_000,
      'a refresh-ahead',
    )
    now += 5000 // past the TTL, within grace: a failing loader gets the stale copy served
    for (let i = 0; i < 10; i++) {
      await ns
        .getOrSet(`f${i}`, () => {
          throw new Error('source down')
        })
        .catch(() => undefined)
    }
    await eventually(
      async () =>
        total(await metrics.metrics(), 'actor_cache_loads_total', { namespace: 'fresh' }) ===
        cache.stats().namespaces.fresh!.loads,
      10_000,
      'every load event',
    )
    const text = await metrics.metrics()
    const stats = cache.stats().namespaces.fresh!
    expect(stats.refreshes).toBeGreaterThan(0)
    expect(total(text, 'actor_cache_refreshes_total', { namespace: 'fresh' })).toBe(stats.refreshes)
    expect(total(text, 'actor_cache_stale_served_total', { namespace: 'fresh' })).toBe(
      stats.staleServed,
    )
    expect(total(text, 'actor_cache_errors_total', { namespace: 'fresh' })).toBe(stats.errors)
    expect(total(text, 'actor_cache_loads_total', { namespace: 'fresh', purpose: 'refresh' })).toBe(
      stats.refreshes,
    )
    expect(stats.staleServed).toBeGreaterThan(0)
    expect(stats.errors).toBeGreaterThan(0)
  })

  it('keep namespace labels bounded: unlisted namespaces and keys never become labels', async () => {
    const a = instance()
    const metrics = track(createCacheMetrics({ namespaces: ['listed'] }))
    for (let n = 0; n < 5; n++) {
      const ns = a.cache.namespace<number>(`unlisted_${n}`)
      await ns.set(`key_${n}`, n)
      await ns.get(`key_${n}`)
    }
    await a.cache.namespace<number>('listed').getOrSet('x', () => 1)
    const text = await metrics.metrics()
    expect(sample(text, 'actor_cache_hits_total', { namespace: '_other', tier: 'l1' })).toBe(5)
    expect(sample(text, 'actor_cache_reads_total', { namespace: 'listed' })).toBe(1)
    expect(text).not.toMatch(/unlisted_|key_\d/)

    const firstSeen = track(createCacheMetrics({ registry: new Registry(), maxNamespaces: 2 }))
    for (const name of ['one', 'two', 'three', 'four'])
      await a.cache.namespace<number>(name).get('k')
    const labels = new Set(
      [
        ...(await firstSeen.metrics()).matchAll(/actor_cache_misses_total\{namespace="([^"]+)"/g),
      ].map((m) => m[1]),
    )
    expect(labels).toEqual(new Set(['one', 'two', '_other']))
  })

  it('pass promtool check metrics', async () => {
    const a = instance()
    const b = instance()
    const metrics = track(
      createCacheMetrics({ namespaces: ['players'], cache: a.cache, l1: a.l1, storeEvents: true }),
    )
    await traffic(a.cache, b.cache, 'players', 200)
    const text = await metrics.metrics()
    expect(text).toContain('actor_cache_store_operations_total{')
    const result = await promtool(() => ['check', 'metrics'], {}, text)
    expect(result.output).toBe('')
    expect(result.code).toBe(0)
  })

  it('close() unsubscribes everything and removes its metrics from the registry', async () => {
    const registry = new Registry()
    const a = instance()
    const metrics = createCacheMetrics({ registry, cache: a.cache, l1: a.l1 })
    const ns = a.cache.namespace<number>('closing')
    await ns.set('k', 1)
    await ns.get('k')
    expect(tieredChannels.load.hasSubscribers).toBe(true)
    expect(tieredChannels.hit.hasSubscribers).toBe(false) // hits come from cache.stats()
    metrics.close()
    metrics.close()
    expect(tieredChannels.hit.hasSubscribers).toBe(false)
    expect(tieredChannels.load.hasSubscribers).toBe(false)
    expect((await registry.metrics()).trim()).toBe('')
    // a new one can register the same names in the same registry
    const again = track(createCacheMetrics({ registry }))
    await ns.get('k')
    expect(
      sample(await again.metrics(), 'actor_cache_hits_total', { namespace: 'closing', tier: 'l1' }),
    ).toBe(1)
  })

  it('rejects bad options naming the option', () => {
    expect(() => createCacheMetrics({ prefix: 'bad prefix' })).toThrow(/prefix: must match/)
    expect(() => createCacheMetrics({ maxNamespaces: -1 })).toThrow(/maxNamespaces/)
    expect(() => createCacheMetrics({ buckets: [1, 0.5] })).toThrow(/buckets/)
    expect(() => createCacheMetrics({ l1: {} as never })).toThrow(/l1: must have a stats method/)
  })
})
