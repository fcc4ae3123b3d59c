export type { FlushStats } from './flusher.js'
export type { WriteBehindOptions } from './flusher-options.js'
export {
  dependents,
  expandEvent,
  type InvalidationTarget,
  TAG_NAMESPACE,
} from './invalidation.js'
export {
  type NamespaceStats,
  TieredNamespace,
  type TieredSetOptions,
} from './namespace.js'
export type {
  BatchLoader,
  Loader,
  LoaderContext,
  NamespacePolicy,
  RecordStore,
} from './policy.js'
export {
  createTieredCache,
  type FlushOptions,
  TieredCache,
  type TieredCacheOptions,
  type TieredCacheStats,
} from './tiered-cache.js'
