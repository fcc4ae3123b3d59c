import { describe, expect, it } from 'vitest'
import { compare, table } from '../src/harness.js'
import { prng, zipfSequence } from '../src/workload.js'

describe('workloads', () => {
  it('are deterministic for a seed', () => {
    expect(Array.from(zipfSequence(1000, 0.99, 50, 3))).toEqual(
      Array.from(zipfSequence(1000, 0.99, 50, 3)),
    )
    expect(Array.from(zipfSequence(1000, 0.99, 50, 3))).not.toEqual(
      Array.from(zipfSequence(1000, 0.99, 50, 4)),
    )
    const a = prng(1)
    const b = prng(1)
    expect([a(), a(), a()]).toEqual([b(), b(), b()])
  })

  it('draw Zipf ranks: popular ranks dominate, all within the universe', () => {
    const seq = zipfSequence(10_000, 0.99, 100_000, 1)
    const counts = new Map<number, number>()
    for (const r of seq) counts.set(r, (counts.get(r) ?? 0) + 1)
    expect(Math.max(...seq)).toBeLessThan(10_000)
    // rank 0 has weight 1 / H(10000, 0.99) ≈ 1/10.2 of all draws; rank 9 about a tenth of that
    expect((counts.get(0) ?? 0) / 100_000).toBeGreaterThan(0.08)
    expect((counts.get(0) ?? 0) / (counts.get(9) ?? 1)).toBeGreaterThan(5)
  })
})

describe('harness', () => {
  it('measures every case and reports cost ratios against the baseline', async () => {
    const results = await compare(
      [
        { name: 'cheap', run: (n) => n },
        {
          name: 'dear',
          run: (n) => {
            let x = 0
            for (let i = 0; i < n * 50; i++) x += Math.sqrt(i)
            return x
          },
        },
      ],
      { opsPerRound: 1_000, rounds: 3, warmup: 1 },
    )
    expect(results.map((r) => r.samples.length)).toEqual([3, 3])
    expect(results[1]!.nsPerOp).toBeGreaterThan(results[0]!.nsPerOp)
    const text = table(results, 'cheap')
    expect(text).toMatch(/\| cheap +\|.*1\.00x \|/)
    expect(text.split('\n')).toHaveLength(4)
  })
})
