import { describe, expect, it } from 'vitest'
import { ConflictError } from '../errors.js'
import type { StoreSuite } from './store-suite.js'

/** Reads and writes: envelopes, versions, compare-and-set, value types, isolation of stored values. */
export function describeReadsAndWrites(suite: StoreSuite): void {
  const { target, fresh } = suite
  describe('get and set', () => {
    it('returns undefined for a missing key', async () => {
      const s = fresh()
      expect(await s.get('missing')).toBeUndefined()
      expect(await s.exists('missing')).toBe(false)
    })

    it('stores a value with its envelope', async () => {
      const s = fresh()
      const before = Date.now()
      const r = await s.set('actor:1', { hp: 10, name: 'Ayla' }, { ttl: 60_000, tags: ['guild:7'] })
      expect(r).toEqual({ applied: true, version: 1 })
      const e = await s.get('actor:1')
      expect(e?.value).toEqual({ hp: 10, name: 'Ayla' })
      expect(e?.version).toBe(1)
      expect(e?.tags).toEqual(['guild:7'])
      expect(e?.createdAt).toBeGreaterThanOrEqual(before - 5)
      expect(e?.createdAt).toBeLessThanOrEqual(Date.now() + 5)
      expect(e?.expiresAt).toBeGreaterThanOrEqual(before + 60_000 - 5)
      expect(e?.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000 + 5)
      expect(await s.exists('actor:1')).toBe(true)
    })

    it('increments the version on each unversioned write', async () => {
      const s = fresh()
      await s.set('k', 1)
      await s.set('k', 2)
      expect(await s.set('k', 3)).toEqual({ applied: true, version: 3 })
      expect((await s.get('k'))?.value).toBe(3)
    })

    it('never replaces a newer version with an older one', async () => {
      const s = fresh()
      expect(await s.set('k', 'v5', { version: 5 })).toEqual({ applied: true, version: 5 })
      expect(await s.set('k', 'v3', { version: 3 })).toEqual({ applied: false, version: 5 })
      expect((await s.get('k'))?.value).toBe('v5')
      expect(await s.set('k', 'v5b', { version: 5 })).toEqual({ applied: true, version: 5 })
      expect(await s.set('k', 'v9', { version: 9 })).toEqual({ applied: true, version: 9 })
      expect((await s.get('k'))?.value).toBe('v9')
    })

    it('compare-and-set by expected version', async () => {
      const s = fresh()
      expect(await s.set('k', 'a', { expectedVersion: 0 })).toEqual({ applied: true, version: 1 })
      const err = await s.set('k', 'b', { expectedVersion: 0 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ConflictError)
      expect(err).toMatchObject({ code: 'E_CONFLICT', expectedVersion: 0, actualVersion: 1 })
      expect(await s.set('k', 'b', { expectedVersion: 1 })).toEqual({ applied: true, version: 2 })
      expect((await s.get('k'))?.value).toBe('b')
    })

    it('copies entries between tiers with expiresAt and createdAt', async () => {
      const s = fresh()
      const expiresAt = Date.now() + 600_000
      await s.set('k', 'x', { version: 4, expiresAt, createdAt: 1_000, tags: ['t'] })
      const e = await s.get('k')
      expect(e).toMatchObject({
        value: 'x',
        version: 4,
        expiresAt,
        createdAt: 1_000,
        tags: ['t'],
      })
      await s.set('p', 'y', { expiresAt: null })
      expect(await s.getTTL('p')).toBe(Infinity)
    })

    it('round-trips the value types game state uses', async () => {
      const s = fresh()
      const value = {
        text: 'héllo 🐉 \u2028',
        n: -0,
        big: 2n ** 70n,
        when: new Date('2026-01-02T03:04:05.678Z'),
        inventory: new Map<string, unknown>([['sword', { dmg: 3 }]]),
        flags: new Set(['a', 'b']),
        list: [1, undefined, null, Number.NaN, Number.POSITIVE_INFINITY],
        $t: 'user key named like a tag',
        nested: { deep: { deeper: [true, false] } },
      }
      await s.set('k', value)
      const got = (await s.get('k'))?.value as typeof value
      expect(got).toEqual(value)
      expect(Object.is(got.n, -0)).toBe(true)
      expect(got.when).toBeInstanceOf(Date)
      expect(got.inventory).toBeInstanceOf(Map)
      expect(got.flags).toBeInstanceOf(Set)
      expect(typeof got.big).toBe('bigint')
    })
  })

  describe('value isolation', () => {
    it('is not affected by mutating the object after set', async () => {
      const s = fresh()
      const v = { hp: 10, items: ['a'] }
      await s.set('k', v)
      v.hp = 0
      v.items.push('b')
      const expected = target.sharesValues ? { hp: 0, items: ['a', 'b'] } : { hp: 10, items: ['a'] }
      expect((await s.get('k'))?.value).toEqual(expected)
    })

    it('is not affected by mutating a returned value', async () => {
      const s = fresh()
      await s.set('k', { hp: 10, items: ['a'] })
      const got = (await s.get('k'))?.value as { hp: number; items: string[] }
      try {
        got.hp = 0
        got.items.push('b')
      } catch {
        // read-only values are a valid way to isolate
      }
      const expected = target.sharesValues ? { hp: 0, items: ['a', 'b'] } : { hp: 10, items: ['a'] }
      expect((await s.get('k'))?.value).toEqual(expected)
    })
  })
}
