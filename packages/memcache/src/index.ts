export { createMemCache, MemCache } from './mem-cache.js'
export type { EvictionPolicyName, MemCacheOptions, ValueMode } from './options.js'
export type { MemCacheCounters, MemCacheStats } from './stats.js'
export { MemCacheStore } from './store.js'
