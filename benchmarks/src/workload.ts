/** Deterministic workloads: seeded PRNG and Zipf-distributed key sequences. */

/** mulberry32: a tiny, fast, seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * `length` ranks in [0, universe) drawn from a Zipf distribution with exponent `s` (rank 0 most
 * popular), by inverse CDF over precomputed cumulative weights.
 */
export function zipfSequence(universe: number, s: number, length: number, seed = 42): Uint32Array {
  const cdf = new Float64Array(universe)
  let total = 0
  for (let k = 0; k < universe; k++) {
    total += 1 / (k + 1) ** s
    cdf[k] = total
  }
  const rand = prng(seed)
  const out = new Uint32Array(length)
  for (let i = 0; i < length; i++) {
    const u = rand() * total
    let lo = 0
    let hi = universe - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((cdf[mid] as number) < u) lo = mid + 1
      else hi = mid
    }
    out[i] = lo
  }
  return out
}

/** A small actor state object, like the PrimaryCore the design talks about. */
export function actorState(i: number): {
  id: string
  hp: number
  mp: number
  level: number
  name: string
  stats: number[]
} {
  return {
    id: `actor:${i}`,
    hp: 100 + (i % 50),
    mp: 40,
    level: 1 + (i % 60),
    name: `hero-${i}`,
    stats: [1, 2, 3, 4, 5, 6],
  }
}
