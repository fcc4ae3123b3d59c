/**
 * The conformance suite every `CacheStore` implementation must pass. Import it from a Vitest
 * test file of the implementation:
 *
 * @example
 * import { runStoreConformance } from '@actor-cache/core/testing'
 * runStoreConformance({ name: 'memcache', createTier: () => createMemCache({ maxSize: 1e7 }) })
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConflictError } from '../errors.js'
import { glob } from '../keys.js'
import { type CacheStore, type CacheTier, hasVersionedDeletes } from '../store.js'

/** What the suite needs from an implementation. */
export interface ConformanceTarget {
  /** Label of the describe block. */
  name: string
  /** Creates the tier under test (called once for the whole suite). */
  createTier(): CacheTier | Promise<CacheTier>
  /**
   * Count of commands the tier has sent to its server so far, if it can tell. When given, the
   * suite asserts that rejected input sends none.
   */
  commandCount?(): number | Promise<number>
  /**
   * The tier hands out the stored objects themselves (an in-process tier in a "by reference"
   * mode): the isolation tests then assert that sharing instead, so the mode stays documented.
   */
  sharesValues?: boolean
  /**
   * The store implements `deleteVersions` (tombstones): the suite then checks how versioned
   * deletes order with writes.
   */
  versionedDeletes?: boolean
}

/**
 * Polls `check` until it holds, failing after `ms`: waiting for an expiry this way holds on a
 * slow machine (it only waits longer), where a fixed sleep would guess how long is enough.
 */
async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Registers the conformance tests for `target` in the current Vitest file. */
export function runStoreConformance(target: ConformanceTarget): void {
  describe(`CacheStore conformance: ${target.name}`, () => {
    let tier: CacheTier
    const run = randomUUID().slice(0, 8)
    let n = 0
    const fresh = <V = unknown>(defaultTtl = Infinity): CacheStore<V> =>
      tier.namespace<V>(`conf-${run}-${++n}`, { defaultTtl })

    beforeAll(async () => {
      tier = await target.createTier()
    })
    afterAll(async () => {
      await tier?.close()
    })

    describe('get and set', () => {
      it('returns undefined for a missing key', async () => {
        const s = fresh()
        expect(await s.get('missing')).toBeUndefined()
        expect(await s.exists('missing')).toBe(false)
      })

      it('stores a value with its envelope', async () => {
        const s = fresh()
        const before = Date.now()
        const r = await s.set(
          'actor:1',
          { hp: 10, name: 'Ayla' },
          { ttl: 60_000, tags: ['guild:7'] },
        )
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
        const expected = target.sharesValues
          ? { hp: 0, items: ['a', 'b'] }
          : { hp: 10, items: ['a'] }
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
        const expected = target.sharesValues
          ? { hp: 0, items: ['a', 'b'] }
          : { hp: 10, items: ['a'] }
        expect((await s.get('k'))?.value).toEqual(expected)
      })
    })

    describe('TTL', () => {
      it('expires entries', async () => {
        const s = fresh()
        const ttl = 300
        const before = Date.now()
        await s.set('short', 'x', ttl)
        await s.set('long', 'y', 600_000)
        const existed = await s.exists('short')
        // Only a check that provably finished before the expiry may expect the entry: on a slow
        // machine the TTL can pass before it runs.
        if (Date.now() - before < ttl) expect(existed).toBe(true)
        await until(async () => (await s.get('short')) === undefined, 'the entry to expire')
        expect(await s.exists('short')).toBe(false)
        expect(await s.getTTL('short')).toBeUndefined()
        expect((await s.getMany(['short', 'long'])).map((e) => e?.value)).toEqual([undefined, 'y'])
      })

      it('applies the namespace default TTL', async () => {
        const s = fresh(600_000)
        await s.set('k', 1)
        const ttl = await s.getTTL('k')
        expect(ttl).toBeGreaterThan(300_000)
        expect(ttl).toBeLessThanOrEqual(600_000)
      })

      it('reports Infinity for entries without TTL and undefined for missing ones', async () => {
        const s = fresh()
        await s.set('k', 1)
        expect(await s.getTTL('k')).toBe(Infinity)
        expect(await s.getTTL('missing')).toBeUndefined()
      })

      it('changes the TTL with setTTL', async () => {
        const s = fresh()
        await s.set('k', 1, 60_000)
        expect(await s.setTTL('k', 1_200_000)).toBe(true)
        const ttl = (await s.getTTL('k')) as number
        expect(ttl).toBeGreaterThan(600_000)
        expect(ttl).toBeLessThanOrEqual(1_200_000)
        expect(await s.setTTL('k', Infinity)).toBe(true)
        expect(await s.getTTL('k')).toBe(Infinity)
        expect(await s.setTTL('missing', 1_000)).toBe(false)
        expect(await s.setTTL('k', 60)).toBe(true)
        await until(async () => (await s.get('k')) === undefined, 'the shortened entry to expire')
      })
    })

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
        const keys = [
          'actor:1:a',
          'actor:1:b',
          'actor:2:a',
          'actor:*:x',
          'actor:[1]:y',
          'actor:?:z',
        ]
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
          await expect(s.set('e', 'x', { expectedVersion: 10 })).rejects.toBeInstanceOf(
            ConflictError,
          )
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

    describe('bad input', () => {
      const badKeys: [string, unknown][] = [
        ['empty', ''],
        ['control character', 'a\u0000b'],
        ['newline', 'a\nb'],
        ['too long', 'x'.repeat(513)],
        ['lone surrogate', 'a\ud800'],
        ['number', 42],
        ['undefined', undefined],
      ]
      for (const [label, key] of badKeys) {
        it(`rejects a ${label} key with E_INVALID_KEY`, async () => {
          const s = fresh()
          const before = await target.commandCount?.()
          await expect(s.get(key as string)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
          await expect(s.set(key as string, 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
          await expect(s.delete(key as string)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
          await expect(s.exists(key as string)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
          await expect(s.getTTL(key as string)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
          await expect(s.getMany(['ok', key as string])).rejects.toMatchObject({
            code: 'E_INVALID_KEY',
          })
          await expect(
            s.setMany([
              { key: 'ok', value: 1 },
              { key: key as string, value: 1 },
            ]),
          ).rejects.toMatchObject({
            code: 'E_INVALID_KEY',
          })
          if (before !== undefined) expect(await target.commandCount?.()).toBe(before)
          expect(await s.get('ok')).toBeUndefined()
        })
      }

      it('rejects bad options with E_INVALID_OPTION before writing', async () => {
        const s = fresh()
        const before = await target.commandCount?.()
        for (const ttl of [-1, 0, Number.NaN]) {
          await expect(s.set('k', 1, ttl)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
          await expect(s.set('k', 1, { ttl })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
        }
        await expect(s.set('k', 1, { version: 0 })).rejects.toMatchObject({
          code: 'E_INVALID_OPTION',
        })
        await expect(s.set('k', 1, { version: 1.5 })).rejects.toMatchObject({
          code: 'E_INVALID_OPTION',
        })
        await expect(s.set('k', 1, { expectedVersion: -1 })).rejects.toMatchObject({
          code: 'E_INVALID_OPTION',
        })
        await expect(s.set('k', 1, { ttl: 10, expiresAt: 10 })).rejects.toMatchObject({
          code: 'E_INVALID_OPTION',
        })
        await expect(s.setTTL('k', -5)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
        await expect(s.set('k', 1, { tags: ['ok', ''] })).rejects.toMatchObject({
          code: 'E_INVALID_KEY',
        })
        await expect(s.deletePattern('actor:[1')).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
        await expect(s.deletePattern('')).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
        if (before !== undefined) expect(await target.commandCount?.()).toBe(before)
        expect(await s.exists('k')).toBe(false)
      })

      it('rejects values it cannot store faithfully with E_SERIALIZATION', async () => {
        const s = fresh()
        const cyclic: Record<string, unknown> = { a: 1 }
        cyclic.self = cyclic
        class Monster {
          hp = 1
        }
        for (const value of [
          () => 1,
          Symbol('x'),
          cyclic,
          new Monster(),
          { nested: [new Monster()] },
        ]) {
          await expect(s.set('k', value)).rejects.toMatchObject({ code: 'E_SERIALIZATION' })
        }
        await expect(
          s.setMany([
            { key: 'a', value: 1 },
            { key: 'b', value: cyclic },
          ]),
        ).rejects.toMatchObject({
          code: 'E_SERIALIZATION',
        })
        expect(await s.getMany(['k', 'a', 'b'])).toEqual([undefined, undefined, undefined])
      })

      it('rejects malformed namespaces', () => {
        for (const ns of ['', 'a:b', 'a b', '-a', 'x'.repeat(65), 'a\u0000']) {
          expect(() => tier.namespace(ns)).toThrow(
            expect.objectContaining({ code: 'E_INVALID_KEY' }),
          )
        }
      })
    })
  })
}

export { type ChangeLogTarget, runChangeLogConformance } from './change-log.js'
