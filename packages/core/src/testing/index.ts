/**
 * Conformance suites for implementations of the core ports, to run from a Vitest test file of the
 * implementation:
 *
 * @example
 * import { runStoreConformance } from '@actor-cache/core/testing'
 * runStoreConformance({ name: 'memcache', createTier: () => createMemCache({ maxSize: 1e7 }) })
 */
export { type ChangeLogTarget, runChangeLogConformance } from './change-log.js'
export { type ConformanceTarget, runStoreConformance } from './store-conformance.js'
