import { describe, expect, it } from 'vitest'
import { glob } from '../keys.js'
import type { StoreSuite } from './store-suite.js'

/** Deletes, clear, batches and glob patterns. */
export function describeDeletes(suite: StoreSuite): void {
  const { fresh } = suite
  describe('delete, clear, batch and pattern operations', () => {
    it('deletes keys', async () => {
      const s = fresh()
      await s.set('k', 1)
      expect(await s.delete('k')).toBe(true)
      expect(await s.delete('k')).toBe(false)
      expect(await s.get('k')).toBeUndefined()
    })

    it('clears only its own namespace', async () => {
      const a = fresh()
      const b = fresh()
      await a.setMany([
        { key: 'x', value: 1 },
        { key: 'y', value: 2 },
      ])
      await b.set('x', 3)
      expect(await a.clear()).toBe(2)
      expect(await a.get('x')).toBeUndefined()
      expect((await b.get('x'))?.value).toBe(3)
    })

    it('reads and writes batches in order', async () => {
      const s = fresh()
      const results = await s.setMany([
        { key: 'a', value: 1 },
        { key: 'b', value: 2, ttl: 60_000, tags: ['t'] },
        { key: 'c', value: 3, version: 7 },
      ])
      expect(results).toEqual([
        { applied: true, version: 1 },
        { applied: true, version: 1 },
        { applied: true, version: 7 },
      ])
      const got = await s.getMany(['c', 'missing', 'a', 'b'])
      expect(got.map((e) => e?.value)).toEqual([3, undefined, 1, 2])
      expect(got[3]?.tags).toEqual(['t'])
      expect(await s.getMany([])).toEqual([])
      expect(await s.deleteMany(['a', 'missing', 'c'])).toBe(2)
      expect((await s.getMany(['a', 'b', 'c'])).map((e) => e?.value)).toEqual([
        undefined,
        2,
        undefined,
      ])
    })

    it('deletes by glob pattern within the namespace only', async () => {
      const s = fresh()
      const other = fresh()
      const keys = ['actor:1:a', 'actor:1:b', 'actor:2:a', 'actor:*:x', 'actor:[1]:y', 'actor:?:z']
      await s.setMany(keys.map((key) => ({ key, value: key })))
      await other.setMany(keys.map((key) => ({ key, value: key })))
      expect(await s.deletePattern('actor:1:*')).toBe(2)
      expect(await s.deletePattern(glob`actor:${'*'}:*`)).toBe(1)
      expect(await s.deletePattern(glob`actor:${'[1]'}:?`)).toBe(1)
      expect(await s.deletePattern('actor:[0-9]:?')).toBe(1)
      expect(await s.deletePattern('nothing*')).toBe(0)
      const left = await s.getMany(keys)
      expect(left.map((e) => e?.value)).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        'actor:?:z',
      ])
      expect((await other.getMany(keys)).every((e) => e !== undefined)).toBe(true)
    })
  })
}
