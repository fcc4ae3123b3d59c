/**
 * Randomised runs over a plain seeded generator, for checks that draw their own inputs (the
 * same rules as the fast-check runs of `property.ts`):
 * - `LONG_RUNS=<factor>` multiplies the runs;
 * - `SEED=<n>` replays exactly the run a failure printed.
 * A failure prints its seed to stderr before failing the test, so a CI log is enough to replay it.
 */

import { LONG } from './property.js'

export { LONG }

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
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

/** Runs `check` with `runs` seeds (or only `SEED`); a failure names its seed. */
export function forEachSeed(runs: number, check: (rand: () => number) => void): void {
  const fixed = process.env.SEED
  const seeds =
    fixed === undefined
      ? Array.from({ length: runs * LONG }, () => Math.floor(Math.random() * 2 ** 31))
      : [Number(fixed)]
  for (const seed of seeds) {
    try {
      check(prng(seed))
    } catch (err) {
      process.stderr.write(`\nfailed with seed ${seed}; replay: SEED=${seed}\n`)
      throw err
    }
  }
}
