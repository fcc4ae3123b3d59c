import {
  createMemoryWriteQueue,
  InvalidKeyError,
  InvalidOptionError,
  TimeoutError,
} from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createTieredCache,
  type GetOrSetOptions,
  type TieredCache,
  type TieredCacheOptions,
} from '../src/index.js'
import { deferred, fakeClock } from './helpers.js'

const caches: TieredCache[] = []
function cache(options: TieredCacheOptions = {}): TieredCache {
  const c = createTieredCache({ l1: createMemCache(), ...options })
  caches.push(c)
  return c
}
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close()
})

describe('the loader decides how its answer is cached', () => {
  it('setTtl gives the loaded copy its own life, without jitter', async () => {
    const clock = fakeClock()
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now })
    const ns = c.namespace<number>('n', { ttl: 60_000 })
    expect(
      await ns.getOrSet('k', (_key, ctx) => {
        ctx.setTtl(5_000)
        return 1
      }),
    ).toBe(1)
    expect(await ns.getTTL('k')).toBe(5_000)
    clock.advance(5_001)
    let calls = 0
    expect(await ns.getOrSet('k', () => ++calls + 1)).toBe(2)
    expect(calls).toBe(1)
  })

  it('setTags makes a tag invalidation reach a loaded value', async () => {
    const c = cache()
    const ns = c.namespace<string>('n')
    let calls = 0
    const load = (key: string, ctx: { setTags(tags: readonly string[]): void }) => {
      calls++
      ctx.setTags(['zone:a'])
      return `${key}#${calls}`
    }
    expect(await ns.getOrSet('k', load)).toBe('k#1')
    expect(await ns.getOrSet('k', load)).toBe('k#1')
    expect((await ns.getEntry('k'))?.tags).toEqual(['zone:a'])
    await c.invalidate({ tags: ['zone:b'] })
    expect(await ns.getOrSet('k', load)).toBe('k#1')
    await c.invalidate({ tags: ['zone:a'] })
    expect(await ns.getOrSet('k', load)).toBe('k#2')
    expect(calls).toBe(2)
  })

  it('a value loaded across an invalidation of its tag is handed over but not cached', async () => {
    const c = cache()
    const ns = c.namespace<string>('n')
    const gate = deferred<void>()
    const started = deferred<void>()
    const first = ns.getOrSet('k', async (_key, ctx) => {
      ctx.setTags(['zone:a'])
      started.resolve()
      await gate.promise
      return 'before'
    })
    await started.promise
    await c.invalidate({ tags: ['zone:a'] })
    gate.resolve()
    expect(await first).toBe('before')
    expect(await ns.getEntry('k')).toBeUndefined()
    expect(await ns.getOrSet('k', () => 'after')).toBe('after')
  })

  it('doNotCache hands the value over and caches nothing, "not found" included', async () => {
    const c = cache()
    const ns = c.namespace<number>('n', { negativeTtl: 60_000 })
    let calls = 0
    const load = (_key: string, ctx: { doNotCache(): void }) => {
      calls++
      ctx.doNotCache()
      return calls
    }
    expect(await ns.getOrSet('k', load)).toBe(1)
    expect(await ns.getOrSet('k', load)).toBe(2)
    expect(await ns.has('k')).toBe(false)
    const missing = (_key: string, ctx: { doNotCache(): void }) => {
      calls++
      ctx.doNotCache()
      return undefined
    }
    calls = 0
    expect(await ns.getOrSet('gone', missing)).toBeUndefined()
    expect(await ns.getOrSet('gone', missing)).toBeUndefined()
    expect(calls).toBe(2)
    expect(ns.stats().negativeHits).toBe(0)
  })

  it('a bad directive fails the load with a typed error and caches nothing', async () => {
    const ns = cache().namespace<number>('n')
    await expect(
      ns.getOrSet('k', (_key, ctx) => {
        ctx.setTtl(-1)
        return 1
      }),
    ).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(
      ns.getOrSet('k', (_key, ctx) => {
        ctx.setTags(['ok', 42 as unknown as string])
        return 1
      }),
    ).rejects.toBeInstanceOf(InvalidKeyError)
    expect(await ns.has('k')).toBe(false)
  })

  it('directives after the loader settled change nothing', async () => {
    const ns = cache().namespace<number>('n', { ttl: 60_000 })
    let late: { setTtl(ttl: number): void; doNotCache(): void } | undefined
    await ns.getOrSet('k', (_key, ctx) => {
      late = ctx
      return 1
    })
    late?.doNotCache()
    late?.setTtl(1)
    expect(await ns.has('k')).toBe(true)
    expect(await ns.getTTL('k')).toBeGreaterThan(1_000)
  })

  it('a batch loader tags, times or skips every key it answers', async () => {
    const clock = fakeClock()
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now })
    const ns = c.namespace<string>('n')
    let batches = 0
    const batch = (
      keys: readonly string[],
      ctx: { setTags(t: readonly string[]): void; setTtl(ms: number): void },
    ) => {
      batches++
      ctx.setTags(['group'])
      ctx.setTtl(1_000)
      return keys.map((k) => `${k}@${batches}`)
    }
    expect(await ns.getMany(['a', 'b'], batch)).toEqual(['a@1', 'b@1'])
    expect(await ns.getTTL('a')).toBe(1_000)
    await c.invalidate({ tags: ['group'] })
    expect(await ns.getMany(['a', 'b'], batch)).toEqual(['a@2', 'b@2'])
    const skipped = await ns.getMany(['c'], (keys, ctx) => {
      ctx.doNotCache()
      return keys.map(() => 'x')
    })
    expect(skipped).toEqual(['x'])
    expect(await ns.has('c')).toBe(false)
  })
})

describe('getOrSet with forceFresh', () => {
  it('calls the loader although a fresh copy is cached, and caches the new value', async () => {
    const ns = cache().namespace<number>('n')
    let calls = 0
    const load = () => ++calls
    expect(await ns.getOrSet('k', load)).toBe(1)
    expect(await ns.getOrSet('k', load)).toBe(1)
    expect(await ns.getOrSet('k', load, { forceFresh: true })).toBe(2)
    expect(await ns.get('k')).toBe(2)
    expect(calls).toBe(2)
  })

  it('reads the store of record instead of the cached copy when there is one', async () => {
    const l3 = createMemCache()
    const c = cache({ l3 })
    const ns = c.namespace<number>('n')
    await ns.set('k', 1)
    // the record changes behind the cache's back (another system wrote it)
    await l3.namespace<number>('n', { defaultTtl: Infinity }).set('k', 7, { version: 9 })
    expect(await ns.get('k')).toBe(1)
    expect(await ns.getOrSet('k', () => -1, { forceFresh: true })).toBe(7)
    expect(await ns.get('k')).toBe(7)
  })

  it('concurrent forced loads of a key run the loader once', async () => {
    const ns = cache().namespace<number>('n')
    const gate = deferred<void>()
    let calls = 0
    const load = async () => {
      calls++
      await gate.promise
      return calls
    }
    const all = Promise.all([1, 2, 3].map(() => ns.getOrSet('k', load, { forceFresh: true })))
    gate.resolve()
    expect(await all).toEqual([1, 1, 1])
    expect(calls).toBe(1)
  })

  it('rejects bad options with a typed error before any loader call', async () => {
    const ns = cache().namespace<number>('n')
    let calls = 0
    const load = () => ++calls
    await expect(
      ns.getOrSet('k', load, { forceFresh: 'yes' as unknown as boolean }),
    ).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(ns.getOrSet('k', load, null as unknown as GetOrSetOptions)).rejects.toBeInstanceOf(
      InvalidOptionError,
    )
    await expect(ns.getOrSet('bad key\n', load, { forceFresh: true })).rejects.toBeInstanceOf(
      InvalidKeyError,
    )
    expect(calls).toBe(0)
  })

  it('a forced load past the hard timeout fails with TimeoutError', async () => {
    const ns = cache().namespace<number>('n', { hardTimeout: 20 })
    await expect(
      ns.getOrSet('k', () => new Promise<number>(() => {}), { forceFresh: true }),
    ).rejects.toBeInstanceOf(TimeoutError)
  })
})

describe('asking for a namespace again', () => {
  it('with an equal policy returns the same namespace', () => {
    const loader = () => 1
    const c = cache()
    const a = c.namespace<number>('n', { ttl: 5_000, loader })
    expect(c.namespace<number>('n', { ttl: 5_000, loader })).toBe(a)
    expect(c.namespace<number>('n')).toBe(a)
  })

  it('with a different policy throws, naming each setting that differs', () => {
    const c = cache()
    c.namespace<number>('n', { ttl: 5_000, loader: () => 1 })
    let error: unknown
    try {
      c.namespace<number>('n', { ttl: 6_000, loader: () => 2 })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InvalidOptionError)
    const message = (error as Error).message
    expect(message).toContain('ttl: 5000, asked 6000')
    expect(message).toContain('loader: another function loader')
    expect(message).not.toContain('grace')
  })

  it('a policy equal to the one options.namespaces gave returns the namespace', () => {
    const c = cache({ namespaces: { n: { ttl: 1_000 } }, queue: createMemoryWriteQueue() })
    const a = c.namespace('n')
    expect(c.namespace('n', { ttl: 1_000 })).toBe(a)
    expect(() => c.namespace('n', { ttl: 2_000 })).toThrow(/ttl: 1000, asked 2000/)
  })
})

describe('writes take a TTL number as their options', () => {
  it('set(key, value, ttl) gives the copies that life', async () => {
    const clock = fakeClock()
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now })
    const ns = c.namespace<number>('n', { ttl: 60_000 })
    await ns.set('k', 1, 2_000)
    expect(await ns.getTTL('k')).toBe(2_000)
    await expect(ns.set('k', 1, -5)).rejects.toBeInstanceOf(InvalidOptionError)
  })
})
