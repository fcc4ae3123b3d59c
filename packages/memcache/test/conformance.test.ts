import { runStoreConformance } from '@actor-cache/core/testing'
import { createMemCache } from '../src/index.js'

runStoreConformance({
  name: 'memcache (freeze)',
  createTier: () => createMemCache({ maxSize: 50 * 1024 * 1024 }),
})

runStoreConformance({
  name: 'memcache (reference)',
  createTier: () => createMemCache({ maxSize: 50 * 1024 * 1024, values: 'reference' }),
  sharesValues: true,
})
