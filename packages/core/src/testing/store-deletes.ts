import { describe, expect, it } from 'vitest'
import { ConflictError } from '../errors.js'
import { glob } from '../keys.js'
import { hasVersionedDeletes } from '../store.js'
import type { StoreSuite } from './store-suite.js'

/** Deletes, clear, batches, glob patterns and, where the store has them, versioned deletes. */
export function describeDeletes(suite: StoreSuite): void {
  const { target, fresh } = suite
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

  if (target.versionedDeletes) {
    describe('versioned deletes (tombstones)', () => {
      const tombstoned = <V = unknown>() => {
        const s = fresh<V>()
        if (!hasVersionedDeletes(s)) throw new Error('the store has no deleteVersions method')
        return s
      }

      it('removes older versions, and later writes of older versions are ignored', async () => {
        const s = tombstoned<string>()
        await s.set('k', 'v5', { version: 5 })
        expect(await s.deleteVersions([{ key: 'k', version: 6 }])).toBe(1)
        expect(await s.get('k')).toBeUndefined()
        expect(await s.exists('k')).toBe(false)
        expect(await s.getTTL('k')).toBeUndefined()
        expect(await s.setTTL('k', 1000)).toBe(false)
        // the reordered older write arrives after the delete
        expect(await s.set('k', 'v5', { version: 5 })).toEqual({ applied: false, version: 6 })
        expect((await s.setMany([{ key: 'k', value: 'v6', version: 6 }]))[0]?.applied).toBe(false)
        expect(await s.get('k')).toBeUndefined()
        // a newer write applies; an unversioned one gets a version above the tombstone
        expect(await s.set('k', 'v7', { version: 7 })).toEqual({ applied: true, version: 7 })
        expect((await s.get('k'))?.value).toBe('v7')
        expect(await s.deleteVersions([{ key: 'k', version: 8 }])).toBe(1)
        expect(await s.set('k', 'next')).toEqual({ applied: true, version: 9 })
      })

      it('never removes a newer version; absent keys keep a tombstone too', async () => {
        const s = tombstoned<string>()
        await s.set('new', 'v9', { version: 9 })
        expect(
          await s.deleteVersions([
            { key: 'new', version: 4 },
            { key: 'absent', version: 3 },
          ]),
        ).toBe(0)
        expect((await s.get('new'))?.value).toBe('v9')
        expect((await s.setMany([{ key: 'absent', value: 'old', version: 2 }]))[0]).toEqual({
          applied: false,
          version: 3,
        })
        expect(await s.getMany(['absent', 'new'])).toMatchObject([undefined, { version: 9 }])
      })

      it('tombstones are absent for counts and compare-and-set, and plain delete forgets them', async () => {
        const s = tombstoned<string>()
        await s.setMany([
          { key: 'a', value: 'a', version: 3 },
          { key: 'b', value: 'b', version: 3 },
        ])
        expect(await s.deleteVersions([{ key: 'a', version: 4 }])).toBe(1)
        expect(await s.delete('a')).toBe(false)
        // plain delete forgot the tombstone: the key starts over
        expect(await s.set('a', 'again', { version: 1 })).toEqual({ applied: true, version: 1 })
        expect(await s.deleteVersions([{ key: 'b', version: 4 }])).toBe(1)
        expect(await s.deleteMany(['b'])).toBe(0)
        await s.deleteVersions([{ key: 'c', version: 10 }])
        expect(await s.deletePattern('*')).toBe(1) // only the live 'a'
        await s.deleteVersions([{ key: 'd', version: 10 }])
        // compare-and-set treats a tombstone as absent, and the new version is above it
        const r = await s.set('d', 'created', { expectedVersion: 0 })
        expect(r.applied).toBe(true)
        expect(r.version).toBeGreaterThan(10)
        await s.deleteVersions([{ key: 'e', version: 10 }])
        await expect(s.set('e', 'x', { expectedVersion: 10 })).rejects.toBeInstanceOf(ConflictError)
        expect(await s.clear()).toBe(1) // only the live 'd'
      })

      it('rejects bad items before any I/O', async () => {
        const s = tombstoned()
        const before = await target.commandCount?.()
        const bad: unknown[] = [
          [{ key: '', version: 1 }],
          [{ key: 'k', version: 0 }],
          [{ key: 'k', version: 1.5 }],
          [{ key: 'k', version: Number.MAX_SAFE_INTEGER + 1 }],
          [{ key: 'k' }],
          [
            { key: 'k', version: 1 },
            { key: 'k', version: 2 },
          ],
          [null],
          'k',
        ]
        for (const items of bad) {
          await expect(
            s.deleteVersions(items as Parameters<typeof s.deleteVersions>[0]),
          ).rejects.toMatchObject({ code: expect.stringMatching(/^E_INVALID_/) })
        }
        if (before !== undefined) expect(await target.commandCount?.()).toBe(before)
        expect(await s.deleteVersions([])).toBe(0)
      })
    })
  }
}
