import { MAX_EXPIRES_AT } from '@actor-cache/core'
import { afterEach, describe, expect, it } from 'vitest'
import { createMemCache, type MemCache, type MemCacheOptions } from '../src/index.js'

// A slot keeps the fields of its last write and makes the entry on the first read after it:
// these pin what a reader sees of that.
let caches: MemCache[] = []
const make = (options: MemCacheOptions = {}): MemCache => {
  const cache = createMemCache({ cleanupInterval: 0, ...options })
  caches.push(cache)
  return cache
}
afterEach(async () => {
  for (const c of caches) await c.close()
  caches = []
})

describe('entries', () => {
  it('are one frozen object per write: reads share it, a later write or setTTL makes a new one', async () => {
    let now = 1_000
    const s = make({ now: () => now }).namespace('ns')
    await s.set('k', 'a', 500)
    const first = s.getSync('k')
    expect(first).toStrictEqual({
      value: 'a',
      version: 1,
      createdAt: 1_000,
      expiresAt: 1_500,
      tags: [],
    })
    expect(Object.isFrozen(first)).toBe(true)
    expect(s.getSync('k')).toBe(first)

    now = 1_100
    await s.set('k', 'b', { tags: ['t'] })
    const second = s.getSync('k')
    expect(second).toStrictEqual({
      value: 'b',
      version: 2,
      createdAt: 1_100,
      expiresAt: null,
      tags: ['t'],
    })
    expect(first).toMatchObject({ value: 'a', version: 1, expiresAt: 1_500 })

    expect(await s.setTTL('k', 250)).toBe(true)
    const third = s.getSync('k')
    expect(third).not.toBe(second)
    expect(third).toMatchObject({ value: 'b', version: 2, createdAt: 1_100, expiresAt: 1_350 })
    expect(second?.expiresAt).toBeNull()
    expect(await s.setTTL('k', Infinity)).toBe(true)
    expect(s.getSync('k')?.expiresAt).toBeNull()
  })

  it('keep every time exactly as written: large, negative, fractional, -0', async () => {
    const times = [0, -0, 1, 2 ** 26 - 1, 2 ** 26, 1_767_225_600_123, 2 ** 53 - 1, -(2 ** 53) + 1]
    const odd = [-1, -(2 ** 26) - 5, 1.5, -0.25, 1e300, -1e300, 2 ** 60]
    const s = make().namespace('ns')
    for (const createdAt of [...times, ...odd]) {
      await s.set('k', createdAt, { createdAt, expiresAt: null })
      expect(Object.is(s.getSync('k')?.createdAt, createdAt)).toBe(true)
    }
    // core keeps expiry times up to MAX_EXPIRES_AT (year 9999); later ones mean never
    for (const expiresAt of [Date.now() + 1_000, MAX_EXPIRES_AT]) {
      await s.set('k', expiresAt, { expiresAt })
      expect(s.getSync('k')?.expiresAt).toBe(expiresAt)
    }
  })

  it('expire on time with fractional times from an injected clock', async () => {
    let now = 10.25
    const s = make({ now: () => now }).namespace('ns')
    await s.set('k', 1)
    expect(s.getSync('k')?.createdAt).toBe(10.25)
    expect(await s.setTTL('k', 0.5)).toBe(true)
    expect(s.getSync('k')?.expiresAt).toBe(10.75)
    expect(await s.getTTL('k')).toBe(0.5)
    now = 10.7
    expect(await s.exists('k')).toBe(true)
    now = 10.75
    expect(await s.exists('k')).toBe(false)
  })
})
