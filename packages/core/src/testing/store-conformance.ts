/**
 * The conformance suite every `CacheStore` implementation must pass. Import it from a Vitest
 * test file of the implementation:
 *
 * @example
 * import { runStoreConformance } from '@actor-cache/core/testing'
 * runStoreConformance({ name: 'memcache', createTier: () => createMemCache({ maxSize: 1e7 }) })
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe } from 'vitest'
import type { CacheStore, CacheTier } from '../store.js'
import { describeBadInput } from './store-bad-input.js'
import { describeDeletes } from './store-deletes.js'
import { describeReadsAndWrites } from './store-reads-writes.js'
import type { StoreSuite } from './store-suite.js'
import { describeTtl } from './store-ttl.js'
import { describeVersionedDeletes } from './store-versioned-deletes.js'

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

/** Registers the conformance tests for `target` in the current Vitest file. */
export function runStoreConformance(target: ConformanceTarget): void {
  describe(`CacheStore conformance: ${target.name}`, () => {
    let tier: CacheTier | undefined
    const run = randomUUID().slice(0, 8)
    let n = 0
    const suite: StoreSuite = {
      target,
      tier() {
        if (tier === undefined) throw new Error('the tier under test is not created yet')
        return tier
      },
      fresh<V = unknown>(defaultTtl = Infinity): CacheStore<V> {
        return suite.tier().namespace<V>(`conf-${run}-${++n}`, { defaultTtl })
      },
    }

    beforeAll(async () => {
      tier = await target.createTier()
    })
    afterAll(async () => {
      await tier?.close()
    })

    describeReadsAndWrites(suite)
    describeTtl(suite)
    describeDeletes(suite)
    if (target.versionedDeletes) describeVersionedDeletes(suite)
    describeBadInput(suite)
  })
}
