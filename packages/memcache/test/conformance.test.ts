import { runStoreConformance } from '@actor-cache/core/testing'
import { createMemCache } from '../src/index.js'

for (const evictionPolicy of ['lru', 'tinylfu'] as const) {
  runStoreConformance({
    name: `memcache (freeze, ${evictionPolicy})`,
    createTier: () => createMemCache({ maxSize: 50 * 1024 * 1024, evictionPolicy }),
  })

  runStoreConformance({
    name: `memcache (reference, ${evictionPolicy})`,
    createTier: () =>
      createMemCache({ maxSize: 50 * 1024 * 1024, values: 'reference', evictionPolicy }),
    sharesValues: true,
  })
}
