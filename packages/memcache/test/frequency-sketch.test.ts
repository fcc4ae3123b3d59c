import { forEachSeed } from '@actor-cache/test-utils/seeded'
import { describe, expect, it } from 'vitest'
import { FrequencySketch, hashKey } from '../src/frequency-sketch.js'

const keys = (n: number, seed = 1): number[] =>
  Array.from({ length: n }, (_, i) => hashKey(seed, `actor:${i}`))

describe('FrequencySketch', () => {
  it('never counts below the truth, and saturates at 15', () => {
    forEachSeed(5, (rand) => {
      const sketch = new FrequencySketch(512)
      const hashes = keys(512, Math.floor(rand() * 1000))
      const truth = new Map<number, number>()
      for (let i = 0; i < 4000; i++) {
        const h = hashes[Math.floor(rand() ** 3 * hashes.length)] as number
        sketch.increment(h)
        truth.set(h, (truth.get(h) ?? 0) + 1)
      }
      for (const [h, n] of truth)
        expect(sketch.frequency(h)).toBeGreaterThanOrEqual(Math.min(15, n))
      for (const h of hashes) expect(sketch.frequency(h)).toBeLessThanOrEqual(15)
    })
  })

  it('mostly counts exactly when filled to its capacity', () => {
    const sketch = new FrequencySketch(1024)
    const hashes = keys(1024)
    hashes.forEach((h, i) => {
      for (let j = 0; j < i % 4; j++) sketch.increment(h)
    })
    const exact = hashes.filter((h, i) => sketch.frequency(h) === i % 4).length
    // 8 counters per entry, the minimum of 4: collisions inflate a few estimates only
    expect(exact / hashes.length).toBeGreaterThan(0.9)
  })

  it('returns the new estimate from increment and raise', () => {
    const sketch = new FrequencySketch(64)
    const [h] = keys(1) as [number]
    expect(sketch.increment(h)).toBe(1)
    expect(sketch.increment(h)).toBe(2)
    expect(sketch.raise(h, 9)).toBe(9)
    expect(sketch.raise(h, 4)).toBe(9) // raising never lowers
    expect(sketch.raise(h, 40)).toBe(15)
    expect(sketch.frequency(h)).toBe(15)
  })

  it('halves every count (rounding down) when aged', () => {
    const sketch = new FrequencySketch(64)
    const hashes = keys(20)
    hashes.forEach((h, i) => {
      sketch.raise(h, i % 16)
    })
    const before = hashes.map((h) => sketch.frequency(h))
    sketch.halve()
    expect(hashes.map((h) => sketch.frequency(h))).toEqual(before.map((n) => n >>> 1))
  })

  it('grows to a power of two, forgetting its counts, and never shrinks', () => {
    const sketch = new FrequencySketch(100)
    expect(sketch.capacity).toBe(128)
    const [h] = keys(1) as [number]
    sketch.increment(h)
    sketch.ensureCapacity(50)
    expect(sketch.capacity).toBe(128)
    expect(sketch.frequency(h)).toBe(1)
    sketch.ensureCapacity(1000)
    expect(sketch.capacity).toBe(1024)
    expect(sketch.frequency(h)).toBe(0)
  })

  it('hashes keys apart by seed', () => {
    expect(hashKey(1, 'actor:1')).toBe(hashKey(1, 'actor:1'))
    expect(hashKey(1, 'actor:1')).not.toBe(hashKey(2, 'actor:1'))
    expect(hashKey(1, 'actor:1')).not.toBe(hashKey(1, 'actor:2'))
  })
})
