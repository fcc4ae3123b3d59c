export {
  createMemCache,
  MemCache,
  type MemCacheCounters,
  type MemCacheOptions,
  type MemCacheStats,
  MemCacheStore,
  type ValueMode,
} from './mem-cache.js'
