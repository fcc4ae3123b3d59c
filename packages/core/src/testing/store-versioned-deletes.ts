import { describe, expect, it } from 'vitest'
import { ConflictError } from '../errors.js'
import { hasVersionedDeletes } from '../store.js'
import type { StoreSuite } from './store-suite.js'

/** Versioned deletes (tombstones), for a store that has them (`versionedDeletes`). */
export function describeVersionedDeletes(suite: StoreSuite): void {
  const { target, fresh } = suite
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
