import type { CacheStore, CacheTier } from '../store.js'
import type { ConformanceTarget } from './store-conformance.js'

/** What each group of the store conformance suite works with. */
export interface StoreSuite {
  readonly target: ConformanceTarget
  /** A namespace of its own for one test, with `defaultTtl` (none by default). */
  fresh<V = unknown>(defaultTtl?: number): CacheStore<V>
  /** The tier under test (created before the first test). */
  tier(): CacheTier
}

/**
 * Polls `check` until it holds, failing after `ms`: waiting for an expiry this way holds on a
 * slow machine (it only waits longer), where a fixed sleep would guess how long is enough.
 */
export async function until(
  check: () => Promise<boolean>,
  what: string,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
