import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { CHANNELS } from '@actor-cache/core'
import { forEachSeed } from '@actor-cache/test-utils/seeded'
import { afterEach, describe, expect, it } from 'vitest'
import { createMemCache, type EvictionPolicyName, type MemCache } from '../src/index.js'

let caches: MemCache[] = []
const make = (options: Parameters<typeof createMemCache>[0]): MemCache => {
  const cache = createMemCache({ cleanupInterval: 0, ...options })
  caches.push(cache)
  return cache
}
afterEach(async () => {
  for (const c of caches) await c.close()
  caches = []
})

/** Reads through: a miss writes the key. Returns whether it hit. */
const access = (store: ReturnType<MemCache['namespace']>, key: string): boolean => {
  if (store.getSync(key) !== undefined) return true
  store.setSync(key, key)
  return false
}

describe('tinylfu', () => {
  it('keeps frequently used entries through a scan of one-off keys, where LRU loses them', () => {
    const survivors = (evictionPolicy: EvictionPolicyName): number => {
      const s = make({ maxEntries: 200, evictionPolicy }).namespace('actors')
      for (let round = 0; round < 5; round++) for (let i = 0; i < 100; i++) access(s, `hot:${i}`)
      for (let i = 0; i < 5_000; i++) access(s, `scan:${i}`)
      let kept = 0
      for (let i = 0; i < 100; i++) if (s.getSync(`hot:${i}`) !== undefined) kept++
      return kept
    }
    expect(survivors('lru')).toBe(0)
    expect(survivors('tinylfu')).toBeGreaterThanOrEqual(95)
  })

  it('hits more often than LRU on a skewed workload', () => {
    const ratio = (evictionPolicy: EvictionPolicyName): number => {
      const s = make({ maxEntries: 100, evictionPolicy }).namespace('actors')
      let hits = 0
      // a fixed skewed sequence: key k is drawn with weight 1 / (k + 1)
      let x = 12345
      for (let i = 0; i < 50_000; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0
        const k = Math.floor(2000 ** (x / 2 ** 32)) - 1
        if (access(s, `k${k}`) && i >= 10_000) hits++
      }
      return hits / 40_000
    }
    expect(ratio('tinylfu')).toBeGreaterThan(ratio('lru') + 0.02)
  })

  it('counts and publishes every eviction, per namespace', () => {
    const published: string[] = []
    const fn = (m: unknown): void => {
      published.push((m as { namespace: string }).namespace)
    }
    subscribe(CHANNELS.evict, fn)
    try {
      const cache = make({ maxEntries: 20, evictionPolicy: 'tinylfu' })
      const a = cache.namespace('a')
      const b = cache.namespace('b')
      for (let i = 0; i < 200; i++) access(i % 3 === 0 ? a : b, `k${i % 70}`)
      const stats = cache.stats()
      expect(stats.entries).toBe(20)
      expect(stats.evictions).toBeGreaterThan(0)
      expect(published.length).toBe(stats.evictions)
      expect(published.filter((ns) => ns === 'a').length).toBe(stats.namespaces.a?.evictions)
    } finally {
      unsubscribe(CHANNELS.evict, fn)
    }
  })

  it('accepts the mem_cache config section with eviction_policy: tinylfu', async () => {
    const { parseCacheConfigYaml } = await import('@actor-cache/core')
    const config = parseCacheConfigYaml(
      'mem_cache:\n  max_entries: 10\n  eviction_policy: tinylfu\n',
    )
    expect(config.memCache.evictionPolicy).toBe('tinylfu')
    const s = make(config.memCache).namespace('a')
    for (let i = 0; i < 50; i++) s.setSync(`k${i}`, i)
    expect(s.getSync('k49')?.value).toBe(49)
  })
})

describe.each(['lru', 'tinylfu'] as const)('random operations (%s)', (evictionPolicy) => {
  it('keep both limits, serve only the latest value of a key, and keep the newest write', () => {
    forEachSeed(25, (rand) => {
      let now = 1_000_000
      const maxEntries = 1 + Math.floor(rand() * 30)
      const maxSize = 4_000 + Math.floor(rand() * 20_000) // maxEntrySize (a quarter) fits any value here
      const cache = make({ maxEntries, maxSize, evictionPolicy, now: () => now })
      const stores = [cache.namespace('a'), cache.namespace('b')]
      const latest = new Map<string, unknown>()
      for (let step = 0; step < 300; step++) {
        const ns = Math.floor(rand() * 2)
        const store = stores[ns] as (typeof stores)[number]
        const key = `k${Math.floor(rand() * 40)}`
        const id = `${ns}:${key}`
        const op = rand()
        if (op < 0.45) {
          const value = { n: step, pad: 'x'.repeat(Math.floor(rand() * 300)) }
          const ttl = rand() < 0.2 ? 1 + Math.floor(rand() * 50) : Infinity
          store.setSync(key, value, ttl)
          latest.set(id, value)
          expect(store.getSync(key)?.value).toEqual(value)
        } else if (op < 0.85) {
          const entry = store.getSync(key)
          if (entry !== undefined) expect(entry.value).toEqual(latest.get(id))
        } else if (op < 0.93) {
          store.deleteSync(key)
          latest.delete(id)
        } else if (op < 0.97) {
          now += Math.floor(rand() * 40)
        } else {
          void store.clear()
          for (const k of [...latest.keys()]) if (k.startsWith(`${ns}:`)) latest.delete(k)
        }
        const stats = cache.stats()
        expect(stats.entries).toBeLessThanOrEqual(maxEntries)
        expect(stats.bytes).toBeLessThanOrEqual(maxSize)
        expect(stats.bytes).toBeGreaterThanOrEqual(0)
      }
    })
  })
})
