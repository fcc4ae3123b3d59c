import { describe, expect, it } from 'vitest'
import type { StoreSuite } from './store-suite.js'

/** Bad keys, options and values: typed errors before any I/O, nothing written. */
export function describeBadInput(suite: StoreSuite): void {
  const { target, fresh } = suite
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
        expect(() => suite.tier().namespace(ns)).toThrow(
          expect.objectContaining({ code: 'E_INVALID_KEY' }),
        )
      }
    })
  })
}
