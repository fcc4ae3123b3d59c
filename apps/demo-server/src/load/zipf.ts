/**
 * Seeded random numbers and a Zipf sampler, as `benchmarks/src/workload.ts` draws its key
 * sequences, but drawn one at a time (a run's length is its duration, not a count).
 */

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

/** Draws ranks in [0, universe) with P(rank k) ∝ 1 / (k + 1)^s: rank 0 is the most popular. */
export interface ZipfSampler {
  readonly universe: number
  next(): number
}

/**
 * A Zipf sampler by inverse CDF over precomputed cumulative weights (one binary search a draw).
 * @throws {RangeError} for a universe that is not a positive integer or a negative exponent
 */
export function createZipfSampler(universe: number, s: number, random: () => number): ZipfSampler {
  if (!Number.isInteger(universe) || universe < 1) {
    throw new RangeError(`universe must be a positive integer, got ${universe}`)
  }
  if (!Number.isFinite(s) || s < 0) throw new RangeError(`s must be ≥ 0, got ${s}`)
  const cdf = new Float64Array(universe)
  let total = 0
  for (let k = 0; k < universe; k++) {
    total += 1 / (k + 1) ** s
    cdf[k] = total
  }
  return {
    universe,
    next() {
      const u = random() * total
      let lo = 0
      let hi = universe - 1
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if ((cdf[mid] as number) < u) lo = mid + 1
        else hi = mid
      }
      return lo
    },
  }
}
