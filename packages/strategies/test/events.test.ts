import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  createMemoryWriteQueue,
  TIERED_CHANNELS,
  type TieredEventKind,
  type TieredFlushEvent,
  type TieredHitEvent,
  type TieredInvalidateEvent,
  type TieredLoadEvent,
  type TieredWriteEvent,
} from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { afterEach, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache, type TieredCacheOptions } from '../src/index.js'
import { fakeClock } from './helpers.js'

const caches: TieredCache[] = []
const stops: (() => void)[] = []
function cache(options: TieredCacheOptions = {}): TieredCache {
  const c = createTieredCache({ l1: createMemCache(), ...options })
  caches.push(c)
  return c
}
/** Collects the events of `kind` (of this test's namespace) until the test ends. */
function listen<E>(kind: TieredEventKind, namespace: string): E[] {
  const seen: E[] = []
  const fn = (message: unknown) => {
    if ((message as { namespace?: string }).namespace === namespace) seen.push(message as E)
  }
  subscribe(TIERED_CHANNELS[kind], fn)
  stops.push(() => unsubscribe(TIERED_CHANNELS[kind], fn))
  return seen
}
afterEach(async () => {
  for (const stop of stops.splice(0)) stop()
  for (const c of caches.splice(0)) await c.close()
})

describe('counters', () => {
  it('count every L1 hit, the synchronous ones included', async () => {
    const ns = cache().namespace<number>('counted')
    await ns.set('k', 1)
    for (let i = 0; i < 5; i++) expect(await ns.get('k')).toBe(1)
    for (let i = 0; i < 3; i++) expect(await ns.getOrSet('k', () => 2)).toBe(1)
    expect(await ns.getMany(['k', 'k'])).toEqual([1, 1])
    expect(ns.stats().l1Hits).toBe(10)
    expect(ns.stats().misses).toBe(0)
  })
})

describe('tiered events on node:diagnostics_channel', () => {
  it('publish hits by tier and misses', async () => {
    const l2 = createMemCache()
    const ns = cache({ l2 }).namespace<number>('ev_hit')
    const hits = listen<TieredHitEvent>('hit', 'ev_hit')
    const misses = listen<{ key: string }>('miss', 'ev_hit')
    await l2.namespace<number>('ev_hit').set('below', 3)
    expect(await ns.get('below')).toBe(3) // L2, copied into L1
    expect(await ns.get('below')).toBe(3) // L1, synchronous path
    expect(await ns.get('nothing')).toBeUndefined()
    // both tiers are memcaches here: the level, not the store's name, tells L1 from L2
    expect(hits.map((h) => [h.key, h.level, h.tier, h.record])).toEqual([
      ['below', 'l2', 'memory', false],
      ['below', 'l1', 'memory', false],
    ])
    expect(misses.map((m) => m.key)).toEqual(['nothing'])
  })

  it('publish loads with their duration and outcome', async () => {
    const clock = fakeClock()
    const ns = cache({ now: clock.now }).namespace<number>('ev_load')
    const loads = listen<TieredLoadEvent>('load', 'ev_load')
    await ns.getOrSet('a', () => {
      clock.advance(7)
      return 1
    })
    await ns.getOrSet('b', () => undefined)
    await expect(
      ns.getOrSet('c', () => {
        throw new Error('source down')
      }),
    ).rejects.toThrow('source down')
    await ns.getMany(['d', 'e'], (keys) => keys.map(() => 5))
    expect(loads.map((l) => [l.key ?? l.count, l.outcome, l.purpose])).toEqual([
      ['a', 'value', 'read'],
      ['b', 'not_found', 'read'],
      ['c', 'error', 'read'],
      [2, 'value', 'read'],
    ])
    expect(loads[0]?.durationMs).toBe(7)
    expect(loads[3]?.found).toBe(2)
    expect((loads[2]?.error as Error | undefined)?.message).toBe('source down')
  })

  it('publish stale copies served and refresh-ahead starts', async () => {
    const clock = fakeClock()
    const c = cache({ l1: createMemCache({ now: clock.now }), now: clock.now, random: () => 0 })
    const ns = c.namespace<number>('ev_stale', {
      ttl: 1_000,
      grace: 10_000,
      refreshAhead: true,
      refreshAheadThreshold: 0.5,
    })
    const stale = listen<{ key: string }>('stale', 'ev_stale')
    const refreshes = listen<{ key: string }>('refresh', 'ev_stale')
    await ns.getOrSet('k', () => 1)
    clock.advance(600)
    expect(await ns.getOrSet('k', () => 2)).toBe(1) // due for a refresh
    await expect.poll(() => refreshes.length).toBe(1)
    clock.advance(5_000)
    expect(
      await ns.getOrSet('k', () => {
        throw new Error('down')
      }),
    ).toBe(2)
    expect(stale.map((s) => s.key)).toEqual(['k'])
  })

  it('publish writes per strategy and invalidations', async () => {
    const c = cache({ l3: createMemCache(), queue: createMemoryWriteQueue() })
    const through = c.namespace<number>('ev_wt')
    const writes = listen<TieredWriteEvent>('write', 'ev_wt')
    const invalidations = listen<TieredInvalidateEvent>('invalidate', 'ev_wt')
    await through.set('k', 1)
    await through.set('k', 2, { expectedVersion: 1 })
    await expect(through.set('k', 3, { expectedVersion: 1 })).rejects.toThrow()
    await through.delete('k')
    await through.invalidate(['x', 'y'])
    expect(writes.map((w) => [w.operation, w.strategy, w.outcome, w.version])).toEqual([
      ['set', 'write_through', 'applied', 1],
      ['set', 'write_through', 'applied', 2],
      ['set', 'write_through', 'error', undefined],
      ['delete', 'write_through', 'applied', undefined],
    ])
    expect(invalidations).toEqual([{ namespace: 'ev_wt', origin: 'local', keys: ['x', 'y'] }])
  })

  it('publish flushes with their size and lag', async () => {
    const clock = fakeClock()
    const c = cache({
      l3: createMemCache({ now: clock.now }),
      queue: createMemoryWriteQueue(),
      now: clock.now,
      writeBehind: { autoStart: false },
    })
    const behind = c.namespace<number>('ev_wb', { strategy: 'write_behind' })
    const writes = listen<TieredWriteEvent>('write', 'ev_wb')
    const flushes = listen<TieredFlushEvent>('flush', 'ev_wb')
    await behind.set('a', 1)
    clock.advance(250)
    await behind.set('b', 2)
    await behind.set('a', 3)
    expect(await c.flush()).toBe(3)
    expect(writes.map((w) => w.strategy)).toEqual(['write_behind', 'write_behind', 'write_behind'])
    expect(flushes).toEqual([
      {
        namespace: 'ev_wb',
        count: 3,
        durationMs: 0,
        lagMs: 250,
        outcome: 'persisted',
        rejected: 0,
      },
    ])
  })
})
