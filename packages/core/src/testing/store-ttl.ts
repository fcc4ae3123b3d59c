import { describe, expect, it } from 'vitest'
import { type StoreSuite, until } from './store-suite.js'

/** Expiry: per-write and default TTLs, `getTTL`, `setTTL`. */
export function describeTtl(suite: StoreSuite): void {
  const { fresh } = suite
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
}
