import {
  createLocalLockProvider,
  createMemoryWriteQueue,
  InvalidConfigError,
  InvalidKeyError,
  InvalidOptionError,
  parseCacheConfigYaml,
  TimeoutError,
} from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { afterEach, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache, type TieredCacheOptions } from '../src/index.js'
import { deferred, eventually, fakeClock, interceptTier, nextTurn } from './helpers.js'

const caches: TieredCache[] = []
function cache(options: TieredCacheOptions = {}): TieredCache {
  const c = createTieredCache(options)
  caches.push(c)
  return c
}
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close()
})

describe('getEntry', () => {
  it('reads through like get: a copy of the record is kept in L1 for the next read', async () => {
    const records = createMemCache()
    const record = records.namespace<{ hp: number }>('primary_core')
    await record.set('actor:1', { hp: 5 }, { ttl: Infinity })
    const ns = cache({ l1: createMemCache() }).namespace<{ hp: number }>('primary_core', { record })
    expect(await ns.getEntry('actor:1')).toMatchObject({ value: { hp: 5 }, version: 1 })
    expect(ns.stats().recordHits).toBe(1)
    expect(await ns.getEntry('actor:1')).toMatchObject({ value: { hp: 5 }, version: 1 })
    expect(await ns.get('actor:1')).toEqual({ hp: 5 })
    expect(ns.stats()).toMatchObject({ recordHits: 1, l1Hits: 2, loads: 0 })
    expect(await ns.getEntry('actor:none')).toBeUndefined()
    await records.close()
  })
})

describe('read-through with L1 only', () => {
  it('loads once, then serves from L1', async () => {
    let calls = 0
    const c = cache({ l1: createMemCache() })
    const ns = c.namespace<{ hp: number }>('primary_core', {
      loader: async (key) => {
        calls++
        return { hp: key.length }
      },
    })
    expect(await ns.get('actor:1')).toEqual({ hp: 7 })
    expect(await ns.get('actor:1')).toEqual({ hp: 7 })
    expect(calls).toBe(1)
    expect(ns.stats().loads).toBe(1)
  })

  it('returns undefined on a miss without a loader, and getOrSet needs one', async () => {
    const ns = cache({ l1: createMemCache() }).namespace('n')
    expect(await ns.get('k')).toBeUndefined()
    await expect(ns.getOrSet('k')).rejects.toBeInstanceOf(InvalidOptionError)
    expect(await ns.getOrSet('k', () => 5)).toBe(5)
    expect(await ns.get('k')).toBe(5)
  })

  it('10,000 concurrent getOrSet of a cold key call the loader once', async () => {
    const gate = deferred<void>()
    let calls = 0
    const ns = cache({ l1: createMemCache() }).namespace<number>('n')
    const loader = async (): Promise<number> => {
      calls++
      await gate.promise
      return 42
    }
    const all = Array.from({ length: 10_000 }, () => ns.getOrSet('cold', loader))
    gate.resolve()
    const values = await Promise.all(all)
    expect(calls).toBe(1)
    expect(values.every((v) => v === 42)).toBe(true)
  })

  it('a read that starts after a write does not join a load begun before it', async () => {
    const gate = deferred<void>()
    let calls = 0
    const ns = cache({ l1: createMemCache() }).namespace<string>('n', {
      record: false,
      loader: async () => {
        calls++
        await gate.promise
        return 'loaded before the write'
      },
    })
    const early = ns.get('k')
    const earlyMany = ns.getMany(['k'])
    await ns.set('k', 'written')
    expect(await ns.get('k')).toBe('written')
    expect(await ns.getMany(['k'])).toEqual(['written'])
    await ns.delete('k')
    const late = ns.get('k') // a new load: the one in flight began before the delete
    gate.resolve()
    expect(await early).toBe('loaded before the write')
    expect(await earlyMany).toEqual(['loaded before the write'])
    expect(await late).toBe('loaded before the write')
    expect(calls).toBe(2)
    // neither load cached its value over the write or the delete that came after it began
    await ns.set('k', 'newest')
    expect(await ns.get('k')).toBe('newest')
  })

  it('a read with a loader does not take the "not found" of a read without one', async () => {
    const ns = cache({ l1: createMemCache() }).namespace<number>('n', { record: false })
    const plain = ns.get('k')
    const loaded = ns.getOrSet('k', () => 5)
    const many = ns.getMany(['k'], (keys) => keys.map(() => 6))
    expect(await plain).toBeUndefined()
    expect(await loaded).toBe(5)
    expect((await many)[0]).toBeTypeOf('number')
  })

  it('getMany deduplicates keys within and across overlapping batches', async () => {
    const seen: string[][] = []
    const gate = deferred<void>()
    const ns = cache({ l1: createMemCache() }).namespace<string>('n', {
      batchLoader: async (keys) => {
        seen.push([...keys])
        await gate.promise
        return new Map(keys.map((k) => [k, `v:${k}`]))
      },
    })
    const a = ns.getMany(['a', 'b', 'a', 'c'])
    const b = ns.getMany(['b', 'c', 'd'])
    const single = ns.get('d')
    gate.resolve()
    expect(await a).toEqual(['v:a', 'v:b', 'v:a', 'v:c'])
    expect(await b).toEqual(['v:b', 'v:c', 'v:d'])
    expect(await single).toBe('v:d') // joins the batch already loading it
    expect(seen).toEqual([['a', 'b', 'c'], ['d']])
    expect(await ns.getMany(['a', 'd'])).toEqual(['v:a', 'v:d'])
    expect(seen.length).toBe(2)
  })

  it('getMany accepts arrays from the batch loader and checks their length', async () => {
    const ns = cache({ l1: createMemCache() }).namespace<number>('n')
    expect(await ns.getMany(['x', 'y'], async (keys) => keys.map((k) => k.length))).toEqual([1, 1])
    await expect(ns.getMany(['p', 'q'], async () => [1])).rejects.toBeInstanceOf(InvalidOptionError)
  })

  it('rejects bad keys before any tier or loader is touched', async () => {
    let calls = 0
    const ns = cache({ l1: createMemCache() }).namespace('n', {
      loader: () => {
        calls++
        return 1
      },
    })
    for (const bad of ['', 'a\nb', 'x'.repeat(5000), 42 as unknown as string]) {
      await expect(ns.get(bad)).rejects.toBeInstanceOf(InvalidKeyError)
      await expect(ns.getOrSet(bad)).rejects.toBeInstanceOf(InvalidKeyError)
      await expect(ns.set(bad, 1)).rejects.toBeInstanceOf(InvalidKeyError)
      await expect(ns.getMany(['ok', bad])).rejects.toBeInstanceOf(InvalidKeyError)
    }
    await expect(ns.set('k', 1, { ttl: -1 })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(ns.set('k', 1, { tags: ['bad\u0000tag'] })).rejects.toBeInstanceOf(InvalidKeyError)
    expect(calls).toBe(0)
    expect(await ns.has('k')).toBe(false)
  })
})

describe('invalidation racing reads', () => {
  it('a read during an invalidation does not put the old value back into a cleared tier', async () => {
    // L3 as a plain cache tier whose deletes, once the invalidation starts, wait for the test (as
    // a slow database's would): the read below runs while L3 still holds the old value
    let gated = false
    const deleting = deferred<void>()
    const release = deferred<void>()
    const l3 = interceptTier(createMemCache(), (method, call) => {
      if (!gated || (method !== 'delete' && method !== 'deleteMany')) return call()
      deleting.resolve()
      return release.promise.then(call)
    })
    const l2 = createMemCache()
    const c = cache({ l1: createMemCache(), l2, l3 })
    const ns = c.namespace<string>('n', { record: false })
    await ns.set('k', 'old')
    gated = true
    const inv = c.invalidate({ namespace: 'n', keys: ['k'] })
    await deleting.promise // the invalidation reached L3, whose delete has not run yet
    await ns.get('k') // concurrent with the invalidation: either answer is fine
    release.resolve()
    await inv
    expect(await ns.get('k')).toBeUndefined()
    expect(await l2.namespace('n').get('k')).toBeUndefined()
  })
})

describe('expiry, jitter, negative caching', () => {
  it('entries expire after the TTL and never outlive it with jitter', async () => {
    const clock = fakeClock()
    let calls = 0
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now, random: () => 0.999 })
    const ns = c.namespace<number>('n', {
      ttl: 10_000,
      jitter: 0.5,
      loader: () => ++calls,
    })
    expect(await ns.get('k')).toBe(1)
    const entry = await ns.getEntry('k')
    // jitter 0.5 with random 0.999: about half the TTL, never more than the TTL
    expect(entry?.expiresAt).toBeLessThanOrEqual(clock.now() + 10_000)
    expect(entry?.expiresAt).toBeGreaterThan(clock.now() + 4_900)
    clock.advance(5_100)
    expect(await ns.get('k')).toBe(2)
  })

  it('jitter spreads expiries', async () => {
    let r = 0
    const c = cache({ l1: createMemCache(), random: () => (r = (r + 0.37) % 1) })
    const ns = c.namespace<number>('n', { ttl: 60_000, jitter: 0.2 })
    for (let i = 0; i < 20; i++) await ns.set(`k${i}`, i)
    const expiries = new Set<number>()
    for (let i = 0; i < 20; i++) expiries.add((await ns.getEntry(`k${i}`))?.expiresAt ?? 0)
    expect(expiries.size).toBeGreaterThan(10)
  })

  it('remembers "not found" for negativeTtl, and a write ends it', async () => {
    const clock = fakeClock()
    let calls = 0
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now })
    const ns = c.namespace<number>('n', {
      negativeTtl: 1_000,
      loader: () => {
        calls++
        return undefined
      },
    })
    for (let i = 0; i < 50; i++) expect(await ns.get('ghost')).toBeUndefined()
    expect(calls).toBe(1)
    expect(ns.stats().negativeHits).toBe(49)
    clock.advance(1_001)
    await ns.get('ghost')
    expect(calls).toBe(2)
    await ns.set('ghost', 7)
    expect(await ns.get('ghost')).toBe(7)
  })

  it('an event rule for creation ends a negative entry', async () => {
    const config = parseCacheConfigYaml(`
strategies:
  primary_core: { strategy: write_through, ttl: 60s, negative_ttl: 60s }
invalidation:
  events:
    actor_created:
      - namespace: primary_core
        keys: ["{entityId}"]
`)
    let exists = false
    let calls = 0
    const c = cache({ config, l1: createMemCache() })
    const ns = c.namespace<string>('primary_core', {
      loader: () => {
        calls++
        return exists ? 'born' : undefined
      },
    })
    expect(await ns.get('actor:9')).toBeUndefined()
    expect(await ns.get('actor:9')).toBeUndefined()
    expect(calls).toBe(1)
    exists = true
    await c.invalidateByEvent('actor_created', { entityId: 'actor:9' })
    expect(await ns.get('actor:9')).toBe('born')
  })
})

describe('grace, timeouts, backoff', () => {
  function setup(policy: Record<string, unknown> = {}) {
    const clock = fakeClock()
    const l1 = createMemCache({ now: clock.now })
    const c = cache({ l1, now: clock.now, random: () => 0 })
    let fail = false
    let calls = 0
    let slow: Promise<void> | undefined
    const ns = c.namespace<number>('n', {
      ttl: 1_000,
      grace: 10_000,
      failureBackoff: 500,
      ...policy,
      loader: async (_key, { signal }) => {
        calls++
        if (slow) await slow
        if (signal.aborted) throw new Error('aborted')
        if (fail) throw new Error('database down')
        return calls
      },
    })
    return {
      clock,
      l1,
      ns,
      calls: () => calls,
      fail: (v: boolean) => {
        fail = v
      },
      slow: (p: Promise<void> | undefined) => {
        slow = p
      },
    }
  }

  it('serves the stale value within grace when the loader fails, then backs off', async () => {
    const t = setup()
    expect(await t.ns.get('k')).toBe(1)
    t.clock.advance(1_500) // expired, inside grace
    t.fail(true)
    expect(await t.ns.get('k')).toBe(1)
    expect(t.calls()).toBe(2)
    expect(await t.ns.get('k')).toBe(1) // backing off: no loader call
    expect(t.calls()).toBe(2)
    t.clock.advance(501)
    expect(await t.ns.get('k')).toBe(1)
    expect(t.calls()).toBe(3)
    t.fail(false)
    t.clock.advance(1_001) // doubled backoff
    expect(await t.ns.get('k')).toBe(4)
    expect(t.ns.stats().staleServed).toBe(3)
  })

  it('past grace a failure reaches the caller', async () => {
    const t = setup()
    await t.ns.get('k')
    t.clock.advance(12_000)
    t.fail(true)
    await expect(t.ns.get('k')).rejects.toThrow('database down')
  })

  it('soft timeout returns stale and lets the loader finish in the background', async () => {
    const t = setup({ softTimeout: 20 })
    await t.ns.get('k')
    t.clock.advance(1_500)
    const gate = deferred<void>()
    t.slow(gate.promise)
    expect(await t.ns.get('k')).toBe(1)
    expect(await t.ns.get('k')).toBe(1) // joins the same background load
    expect(t.calls()).toBe(2)
    t.slow(undefined)
    gate.resolve()
    // the background load caches its value: wait for that, not for a while
    await eventually(
      () => t.l1.namespace('n').getSync('k')?.value === 2,
      5_000,
      'the background load to reach L1',
    )
    expect(await t.ns.get('k')).toBe(2)
    expect(t.calls()).toBe(2)
  })

  it('hard timeout gives TimeoutError without a stale value, the stale value with one', async () => {
    const t = setup({ hardTimeout: 30 })
    const gate = deferred<void>()
    t.slow(gate.promise)
    const err = await t.ns.get('k').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TimeoutError)
    expect((err as TimeoutError).code).toBe('E_TIMEOUT')
    t.slow(undefined)
    gate.resolve()
    expect(await t.ns.get('k')).toBe(2)
    t.clock.advance(1_500)
    const gate2 = deferred<void>()
    t.slow(gate2.promise)
    expect(await t.ns.get('k')).toBe(2)
    gate2.resolve()
  })

  it('hard timeout bounds a batch loader too: getMany and get of its keys do not hang', async () => {
    const ns = cache({ l1: createMemCache() }).namespace<number>('n', {
      hardTimeout: 30,
      loader: () => new Promise<number>(() => {}),
      batchLoader: () => new Promise<number[]>(() => {}),
    })
    const joined = ns.get('b')
    const err = await ns.getMany(['a', 'b']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TimeoutError)
    expect(await joined.catch((e: unknown) => e)).toBeInstanceOf(TimeoutError)
    await expect(ns.getMany(['a'], 5 as never)).rejects.toBeInstanceOf(InvalidOptionError)
  })

  it('refuses contradictory timeouts', () => {
    expect(() =>
      cache({ l1: createMemCache() }).namespace('n', { softTimeout: 100, hardTimeout: 50 }),
    ).toThrow(InvalidOptionError)
  })
})

describe('refresh-ahead', () => {
  it('refreshes in the background near expiry; the caller never waits', async () => {
    const clock = fakeClock()
    const l1 = createMemCache({ now: clock.now })
    const c = cache({ l1, now: clock.now, random: () => 0 })
    let calls = 0
    const gate = deferred<void>()
    const ns = c.namespace<number>('n', {
      ttl: 10_000,
      refreshAhead: true,
      refreshAheadThreshold: 0.2,
      loader: async () => {
        calls++
        if (calls > 1) await gate.promise
        return calls
      },
    })
    expect(await ns.get('k')).toBe(1)
    clock.advance(7_000)
    expect(await ns.get('k')).toBe(1)
    expect(calls).toBe(1)
    clock.advance(1_500) // 15% left
    expect(await ns.get('k')).toBe(1) // answered at once
    expect(await ns.get('k')).toBe(1)
    expect(calls).toBe(2) // one refresh however many reads
    gate.resolve()
    // the refresh caches its value: wait for that, not for a while
    await eventually(
      () => l1.namespace('n').getSync('k')?.value === 2,
      5_000,
      'the refresh to reach L1',
    )
    expect(await ns.get('k')).toBe(2)
    expect(ns.stats().refreshes).toBe(1)
  })

  it('a write during the refresh wins over the refresh result', async () => {
    const clock = fakeClock()
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now, random: () => 0 })
    let calls = 0
    let returned = 0
    const gate = deferred<void>()
    const ns = c.namespace<string>('n', {
      ttl: 10_000,
      refreshAhead: true,
      loader: async () => {
        const n = ++calls
        if (n > 1) await gate.promise
        returned++
        return `loaded-${n}`
      },
    })
    await ns.get('k')
    clock.advance(9_000)
    await ns.get('k') // starts the refresh
    await ns.set('k', 'written')
    gate.resolve()
    // The refresh's loader returns, then the cache handles its result in promise continuations
    // only (L1 is in memory, no timers): by the next event-loop turn all of it has run.
    await nextTurn()
    expect(returned).toBe(2)
    expect(await ns.get('k')).toBe('written')
  })

  it('an invalidation during the refresh discards its result', async () => {
    const clock = fakeClock()
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now, random: () => 0 })
    let calls = 0
    let returned = 0
    const gate = deferred<void>()
    const ns = c.namespace<string>('n', {
      ttl: 10_000,
      refreshAhead: true,
      loader: async () => {
        const n = ++calls
        if (n === 2) await gate.promise
        returned++
        return `loaded-${n}`
      },
    })
    await ns.get('k')
    clock.advance(9_000)
    await ns.get('k')
    await c.invalidate({ namespace: 'n', keys: ['k'] })
    gate.resolve()
    // as above: the refresh has returned and its result was handled before the read below
    await nextTurn()
    expect(returned).toBe(2)
    expect(await ns.get('k')).toBe('loaded-3')
  })
})

describe('options', () => {
  it('takes strategies from the config file and code overrides them', () => {
    const config = parseCacheConfigYaml(`
strategies:
  primary_core: { strategy: write_through, ttl: 300s, refresh_ahead: true }
`)
    const c = cache({ config, l1: createMemCache() })
    expect(c.namespace('primary_core').strategy).toBe('write_through')
    expect(() => c.namespace('primary_core', { ttl: 5 })).toThrow(InvalidOptionError)
  })

  it('refuses write_behind and write_around without a store of record', () => {
    const c = cache({ l1: createMemCache() })
    expect(() => c.namespace('a', { strategy: 'write_behind' })).toThrow(InvalidConfigError)
    expect(() => c.namespace('b', { strategy: 'write_around' })).toThrow(InvalidConfigError)
  })

  it('rejects bad policies and tiers with messages naming the option', () => {
    const c = cache({ l1: createMemCache() })
    expect(() => c.namespace('a', { strategy: 'write_sideways' as never })).toThrow(/strategy/)
    expect(() => c.namespace('b', { ttl: 0 })).toThrow(/ttl/)
    expect(() => c.namespace('c', { jitter: 2 })).toThrow(/jitter/)
    expect(() => c.namespace('d', { grace: -1 })).toThrow(/grace/)
    expect(() => c.namespace('e', { loader: 5 as never })).toThrow(/loader/)
    expect(() => c.namespace('f', { record: {} as never })).toThrow(/record/)
    expect(() => c.namespace('actor-cache.tags')).toThrow(InvalidKeyError)
    expect(() => c.namespace('bad name')).toThrow(InvalidKeyError)
    expect(() => createTieredCache({ l1: {} as never })).toThrow(/l1/)
  })

  it('works without any tier (loader only) and with a local lock', async () => {
    let calls = 0
    const c = cache({ lock: createLocalLockProvider(), queue: createMemoryWriteQueue() })
    const ns = c.namespace<number>('n', { loader: () => ++calls })
    expect(await ns.get('k')).toBe(1)
    expect(await ns.get('k')).toBe(2)
  })
})
