/**
 * Type tests: this file is checked by `tsc` (the package's typecheck); each `@ts-expect-error`
 * fails the check when the line it guards starts to compile. The run proves the guarded calls
 * behave as their types say.
 */
import { createMemCache } from '@actor-cache/memcache'
import {
  createTieredCache,
  type LoaderContext,
  type NamespaceStats,
  type TieredCache,
  type TieredCacheStats,
  type TieredNamespace,
} from '@actor-cache/strategies'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import { type GuardedCache, guardCache, type PrincipalView, runAs } from '../src/index.js'

interface PrimaryCore {
  hp: number
  level: number
}
interface DerivedStats {
  power: number
}
type Namespaces = { primary_core: PrimaryCore; derived_stats: DerivedStats }

const policy = { roles: { server: [{ namespaces: '*', operations: '*' as const }] } }
const server = { id: 'svc-1', roles: ['server'] }

const loadPrimary = async (key: string): Promise<PrimaryCore> => ({ hp: key.length, level: 1 })
const findPrimary = async (key: string): Promise<PrimaryCore | undefined> =>
  key === 'none' ? undefined : { hp: 1, level: 1 }

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const c of open.splice(0)) await c.close()
})

function untypedCache(): TieredCache {
  const l1 = createMemCache()
  const cache = createTieredCache({ l1 })
  open.push(cache, l1)
  return cache
}

function typedCache(): TieredCache<Namespaces> {
  const l1 = createMemCache()
  const cache = createTieredCache<Namespaces>({ l1 })
  open.push(cache, l1)
  return cache
}

describe('getOrSet through the guard types like its loader', () => {
  it('resolves to V when the loader never returns undefined', async () => {
    const ns = guardCache(untypedCache(), { policy }).as(server).namespace<PrimaryCore>('primary')
    expectTypeOf(ns).toEqualTypeOf<TieredNamespace<PrimaryCore>>()
    expectTypeOf(ns.getOrSet('actor:1', loadPrimary)).resolves.toEqualTypeOf<PrimaryCore>()
    expectTypeOf(
      ns.getOrSet('actor:1', () => ({ hp: 1, level: 2 })),
    ).resolves.toEqualTypeOf<PrimaryCore>()
    expectTypeOf(
      ns.getOrSet('actor:1', loadPrimary, { forceFresh: true }),
    ).resolves.toEqualTypeOf<PrimaryCore>()
    // no `?.`: the value is a PrimaryCore
    expect((await ns.getOrSet('actor:1', loadPrimary)).hp).toBe(7)
  })

  it('resolves to V | undefined when the loader may find nothing', async () => {
    const guarded = guardCache(untypedCache(), { policy })
    // expectTypeOf makes the calls: as a principal allowed to, with a namespace loader for the last
    const ns = guarded.as(server).namespace<PrimaryCore>('primary', { loader: findPrimary })
    expectTypeOf(ns.getOrSet('none', findPrimary)).resolves.toEqualTypeOf<PrimaryCore | undefined>()
    expectTypeOf(ns.getOrSet('none')).resolves.toEqualTypeOf<PrimaryCore | undefined>()
    // @ts-expect-error the value may be undefined
    const unsafe = async () => (await ns.getOrSet('none', findPrimary)).hp
    expect(typeof unsafe).toBe('function')
    const fromContext = guarded.namespace<PrimaryCore>('primary')
    expect(await runAs(server, () => fromContext.getOrSet('none', findPrimary))).toBeUndefined()
  })

  it('refuses a loader or a value of another type', () => {
    const ns = guardCache(untypedCache(), { policy }).namespace<PrimaryCore>('primary')
    // @ts-expect-error a string is not a PrimaryCore
    const wrongLoader = () => ns.getOrSet('k', async () => 'text')
    // @ts-expect-error a string is not a PrimaryCore
    const wrongValue = () => ns.set('k', 'text')
    expect([typeof wrongLoader, typeof wrongValue]).toEqual(['function', 'function'])
  })

  it("types an inline loader's context: setTtl, setTags, doNotCache, signal, stale", async () => {
    const ns = guardCache(untypedCache(), { policy }).as(server).namespace<PrimaryCore>('primary')
    let seen: AbortSignal | undefined
    const value = await ns.getOrSet('actor:2', (key, ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<LoaderContext<PrimaryCore>>()
      expectTypeOf(ctx.stale).toEqualTypeOf<PrimaryCore | undefined>()
      expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>()
      expectTypeOf(ctx.setTtl).parameter(0).toEqualTypeOf<number>()
      expectTypeOf(ctx.setTags).parameter(0).toEqualTypeOf<readonly string[]>()
      expectTypeOf(ctx.doNotCache).returns.toEqualTypeOf<void>()
      seen = ctx.signal
      ctx.setTtl(60_000)
      ctx.setTags(['zone:1'])
      return { hp: key.length, level: 3 }
    })
    expect(value).toEqual({ hp: 7, level: 3 })
    expect(seen).toBeInstanceOf(AbortSignal)
    expect(await ns.getTTL('actor:2')).toBeLessThanOrEqual(60_000)
    const batch = ns.getMany(['a', 'b'], (keys, ctx) => {
      expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>()
      ctx.doNotCache()
      return keys.map((k) => ({ hp: k.length, level: 1 }))
    })
    expectTypeOf(batch).resolves.toEqualTypeOf<(PrimaryCore | undefined)[]>()
    expect(await batch).toEqual([
      { hp: 1, level: 1 },
      { hp: 1, level: 1 },
    ])
    expect(await ns.has('a')).toBe(false)
  })
})

describe('a cache typed by its namespaces, through the guard', () => {
  it('types namespace(name) by its name and refuses unknown names', async () => {
    const guarded = guardCache(typedCache(), { policy })
    const view = guarded.as(server)
    expectTypeOf(guarded.namespace('primary_core')).toEqualTypeOf<TieredNamespace<PrimaryCore>>()
    expectTypeOf(view.namespace('derived_stats')).toEqualTypeOf<TieredNamespace<DerivedStats>>()
    // @ts-expect-error not a namespace of this cache
    expect(view.namespace('unknown_ns').name).toBe('unknown_ns')
    // @ts-expect-error not a namespace of this cache
    expect(() => guarded.namespace('other')).not.toThrow()
    // @ts-expect-error the loader must return the namespace's type
    const wrong = () => view.namespace('derived_stats', { loader: loadPrimary })
    expect(typeof wrong).toBe('function')
    const primary = view.namespace('primary_core')
    await primary.set('actor:3', { hp: 3, level: 1 })
    const core = await primary.getOrSet('actor:3', loadPrimary)
    expectTypeOf(core).toEqualTypeOf<PrimaryCore>()
    expect(core.level).toBe(1)
  })

  it("keeps the cache's other types: stats, invalidations, close", async () => {
    const guarded = guardCache(typedCache(), { policy })
    const view = guarded.as(server)
    expectTypeOf(view.stats()).toEqualTypeOf<TieredCacheStats>()
    expectTypeOf(view.namespace('primary_core').stats()).toEqualTypeOf<NamespaceStats>()
    expectTypeOf(view.namespace('primary_core').strategy).toEqualTypeOf<
      TieredNamespace['strategy']
    >()
    expectTypeOf(view.invalidateByEvent).toBeCallableWith('stat_updated', { entityId: 'a' })
    // @ts-expect-error a target names namespaces, keys, patterns, tags or all
    const wrongTarget = () => view.invalidate({ namespace: 'primary_core', key: 'a' })
    expect(typeof wrongTarget).toBe('function')
    expect(Object.keys(view.stats().namespaces)).toEqual(['primary_core'])
    expect(view.namespace('primary_core').stats().l1Hits).toBe(0)
    expect(view.namespace('primary_core').strategy).toBe('write_through')
    await runAs(server, () => guarded.close())
  })

  it('every guarded cache is a GuardedCache; its views are PrincipalViews', () => {
    const typed = guardCache(typedCache(), { policy })
    const untyped = guardCache(untypedCache(), { policy })
    expectTypeOf(typed).toEqualTypeOf<GuardedCache<TieredCache<Namespaces>>>()
    expectTypeOf(typed.as(server)).toEqualTypeOf<PrincipalView<TieredCache<Namespaces>>>()
    const closeAll = (caches: readonly GuardedCache[]) => Promise.all(caches.map((c) => c.close()))
    expectTypeOf(closeAll).toBeCallableWith([typed, untyped])
    const any: GuardedCache<TieredCache> = untyped
    expectTypeOf(any.namespace('whatever')).toEqualTypeOf<TieredNamespace<unknown>>()
    // @ts-expect-error not a cache
    expect(() => guardCache({}, { policy })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    )
  })
})
