/**
 * Type tests: this file is checked by `tsc` (the package's typecheck, part of the test command);
 * each `@ts-expect-error` fails the check when the line it guards starts to compile. The run
 * itself only proves the calls behave as their types say.
 */
import { createMemCache } from '@actor-cache/memcache'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import {
  createTieredCache,
  type LoaderContext,
  type NamespacePolicy,
  type TieredCache,
  type TieredNamespace,
} from '../src/index.js'

interface PrimaryCore {
  hp: number
  level: number
}
interface DerivedStats {
  power: number
}
type Namespaces = { primary_core: PrimaryCore; derived_stats: DerivedStats }

const loadPrimary = async (key: string): Promise<PrimaryCore> => ({ hp: key.length, level: 1 })
const findPrimary = async (key: string): Promise<PrimaryCore | undefined> =>
  key === 'none' ? undefined : { hp: 1, level: 1 }

const open: TieredCache[] = []
afterEach(async () => {
  for (const c of open.splice(0)) await c.close()
})

describe('getOrSet types like its loader', () => {
  it('resolves to V when the loader never returns undefined', async () => {
    const c = createTieredCache({ l1: createMemCache() })
    open.push(c)
    const ns = c.namespace<PrimaryCore>('primary_core')
    const hp = (await ns.getOrSet('actor:1', loadPrimary)).hp
    expectTypeOf(ns.getOrSet('actor:1', loadPrimary)).resolves.toEqualTypeOf<PrimaryCore>()
    expectTypeOf(
      ns.getOrSet('actor:1', () => ({ hp: 1, level: 2 })),
    ).resolves.toEqualTypeOf<PrimaryCore>()
    expectTypeOf(
      ns.getOrSet('actor:1', loadPrimary, { forceFresh: true }),
    ).resolves.toEqualTypeOf<PrimaryCore>()
    expect(hp).toBe(7)
  })

  it('resolves to V | undefined when the loader may find nothing, or is the namespace loader', async () => {
    const c = createTieredCache({ l1: createMemCache() })
    open.push(c)
    const ns = c.namespace<PrimaryCore>('primary_core', { loader: findPrimary })
    expectTypeOf(ns.getOrSet('actor:1', findPrimary)).resolves.toEqualTypeOf<
      PrimaryCore | undefined
    >()
    expectTypeOf(ns.getOrSet('actor:1')).resolves.toEqualTypeOf<PrimaryCore | undefined>()
    // @ts-expect-error the value may be undefined
    const unsafe = async () => (await ns.getOrSet('none', findPrimary)).hp
    expect(typeof unsafe).toBe('function')
    expect(await ns.getOrSet('none', findPrimary)).toBeUndefined()
  })

  it('rejects a loader of another type', () => {
    const ns = createTieredCache().namespace<PrimaryCore>('primary_core')
    // @ts-expect-error a string is not a PrimaryCore
    const wrong = () => ns.getOrSet('k', async () => 'text')
    expect(typeof wrong).toBe('function')
  })

  it('types the loader context', () => {
    const ns = createTieredCache().namespace<PrimaryCore>('primary_core')
    const load = (_key: string, ctx: LoaderContext<PrimaryCore>): PrimaryCore => {
      expectTypeOf(ctx.stale).toEqualTypeOf<PrimaryCore | undefined>()
      expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>()
      ctx.setTtl(1_000)
      ctx.setTags(['zone:1'])
      ctx.doNotCache()
      return { hp: 1, level: 1 }
    }
    expectTypeOf(ns.getOrSet('k', load)).resolves.toEqualTypeOf<PrimaryCore>()
  })
})

describe('a cache typed by its namespaces', () => {
  it('types namespace(name) by its name and refuses unknown names', () => {
    const c = createTieredCache<Namespaces>({ l1: createMemCache() })
    open.push(c)
    expectTypeOf(c.namespace('primary_core')).toEqualTypeOf<TieredNamespace<PrimaryCore>>()
    expectTypeOf(c.namespace('derived_stats')).toEqualTypeOf<TieredNamespace<DerivedStats>>()
    // @ts-expect-error not a namespace of this cache
    expect(() => c.namespace('unknown_ns')).not.toThrow()
    // @ts-expect-error the loader must return the namespace's type
    const wrong = () => c.namespace('derived_stats', { loader: loadPrimary })
    expect(typeof wrong).toBe('function')
  })

  it('types options.namespaces by name, and refuses unknown names there', () => {
    const c = createTieredCache<Namespaces>({
      namespaces: {
        primary_core: { loader: loadPrimary, ttl: 60_000 },
        // @ts-expect-error the loader must return DerivedStats
        derived_stats: { loader: loadPrimary },
      },
    })
    open.push(c)
    createTieredCache<Namespaces>({
      // @ts-expect-error not a namespace of this cache
      namespaces: { other: { ttl: 1 } },
    })
    expect(c.namespace('primary_core').strategy).toBe('write_through')
  })

  it('is a TieredCache to code that takes any cache', () => {
    const typed = createTieredCache<Namespaces>()
    const untyped = createTieredCache()
    const closeAll = (caches: readonly TieredCache[]) => Promise.all(caches.map((c) => c.close()))
    expectTypeOf(closeAll).toBeCallableWith([typed, untyped])
    const any: TieredCache = typed
    expectTypeOf(any.namespace('whatever')).toEqualTypeOf<TieredNamespace<unknown>>()
    open.push(typed, untyped)
  })

  it('an untyped cache takes real loaders in options.namespaces and any name', async () => {
    const policy: NamespacePolicy<PrimaryCore> = { loader: loadPrimary }
    const c = createTieredCache({
      l1: createMemCache(),
      namespaces: {
        primary_core: policy,
        derived_stats: { loader: async (): Promise<DerivedStats> => ({ power: 3 }) },
      },
    })
    open.push(c)
    const ns = c.namespace<PrimaryCore>('primary_core')
    expectTypeOf(ns).toEqualTypeOf<TieredNamespace<PrimaryCore>>()
    expectTypeOf(c.namespace('anything')).toEqualTypeOf<TieredNamespace<unknown>>()
    expect(await ns.getOrSet('actor:22')).toEqual({ hp: 8, level: 1 })
  })
})

describe('writes', () => {
  it('take options or a TTL number, and invalidateByEvent replaces emit', () => {
    const c = createTieredCache()
    const ns = c.namespace<PrimaryCore>('primary_core')
    expectTypeOf(ns.set).toBeCallableWith('k', { hp: 1, level: 1 }, 60_000)
    expectTypeOf(ns.set).toBeCallableWith('k', { hp: 1, level: 1 }, { ttl: 60_000, tags: ['a'] })
    expectTypeOf(c.invalidateByEvent).toBeCallableWith('stat_updated', { entityId: 'actor:1' })
    // @ts-expect-error renamed: it invalidates, it does not emit
    expect(c.emit).toBeUndefined()
  })
})
