export type { FlushStats } from './flusher.js'
export type { WriteBehindOptions } from './flusher-options.js'
export {
  dependents,
  expandEvent,
  type InvalidationTarget,
  TAG_NAMESPACE,
} from './invalidation.js'
export {
  type GetOrSetOptions,
  type NamespaceStats,
  type TieredDeleteOptions,
  TieredNamespace,
  type TieredSetOptions,
} from './namespace.js'
export type {
  BatchLoader,
  BatchLoaderContext,
  CacheDirectives,
  Loader,
  LoaderContext,
  NamespacePolicy,
  RecordStore,
  ValueLoader,
} from './policy.js'
export {
  createTieredCache,
  type FlushOptions,
  type NamespacePolicies,
  type NamespaceTypes,
  TieredCache,
  type TieredCacheOptions,
  type TieredCacheStats,
} from './tiered-cache.js'
