import type {
  CacheConfig,
  CacheTier,
  DeadLetterSink,
  InvalidationBus,
  LockProvider,
  QueuedWrite,
  WriteQueue,
  WriteTracking,
} from '@actor-cache/core'
import type { FlushStats } from './flusher.js'
import type { WriteBehindOptions } from './flusher-options.js'
import type { NamespaceStats } from './namespace-context.js'
import type { AnyNamespacePolicy, NamespacePolicy } from './policy.js'

/**
 * The value type of each namespace, by name. `createTieredCache<{ primary_core: PrimaryCore }>()`
 * types `cache.namespace('primary_core')` by its name and makes an unknown name a compile error;
 * without it, any name is accepted and `cache.namespace<V>(name)` gives the type.
 */
export type NamespaceTypes = Record<string, unknown>

/** True for a cache not typed by its namespaces (any name; the value type given per call). */
export type Untyped<N> = string extends keyof N ? true : false

/** Policies per namespace in code: by name, each typed by its namespace's value type. */
export type NamespacePolicies<N extends object> =
  Untyped<N> extends true
    ? Readonly<Record<string, AnyNamespacePolicy>>
    : { readonly [K in keyof N]?: NamespacePolicy<N[K]> }

/** Options of {@link createTieredCache}. Every tier and port is optional. */
export interface TieredCacheOptions<N extends object = NamespaceTypes> {
  /** The validated config file (`parseCacheConfigYaml`): strategies per namespace and invalidation rules. */
  config?: CacheConfig
  /** L1: an in-process tier (`@actor-cache/memcache`). Its synchronous path serves hits without I/O. */
  l1?: CacheTier
  /** L2: a shared tier (`@actor-cache/redis`). It orders versions when there is no store of record. */
  l2?: CacheTier
  /**
   * L3: a persistent tier (`@actor-cache/prisma-store`). By default it is each namespace's store of
   * record; a namespace with `record: false` or its own record uses it as a cache tier instead.
   */
  l3?: CacheTier
  /** Carries invalidations to other instances' L1 (`createRedisBus`, or a local hub). */
  bus?: InvalidationBus
  /** Makes a cold key load once across instances (`createRedisLockProvider`). */
  lock?: LockProvider
  /**
   * Queue of write-behind writes. Use a durable one (`createRedisWriteQueue`) where acknowledged
   * writes must survive a crash. @default an in-process queue (lost with the process)
   */
  queue?: WriteQueue<QueuedWrite>
  /** Where writes the record refuses for good go (`createPrismaDeadLetters`). */
  deadLetters?: DeadLetterSink
  /** Policies per namespace in code; they override the config file's `strategies` entries. */
  namespaces?: NamespacePolicies<N>
  /**
   * State tracking (`tracker.writeTracking(...)` of `@actor-cache/state-tracker`): every write and
   * delete of a tracked namespace is logged with its change record in the same transaction as
   * the record's write. Tracked namespaces need a store of record that records changes
   * (`@actor-cache/prisma-store`) and a write_through or write_around strategy.
   */
  tracking?: WriteTracking
  /** The write-behind flusher's batching and retries. */
  writeBehind?: WriteBehindOptions
  /** Clock in epoch ms (tests pass a fake one; give the same to the tiers). @default Date.now */
  now?: () => number
  /** Random numbers in [0, 1) for TTL jitter. @default Math.random */
  random?: () => number
}

/** Counters of a cache. */
export interface TieredCacheStats {
  namespaces: Record<string, NamespaceStats>
  /** The write-behind flusher, when there is one. */
  writeBehind: FlushStats | undefined
}

/** Options of {@link TieredCache.flush} and {@link TieredCache.close}. */
export interface FlushOptions {
  /**
   * Give up after this many ms (by the cache's clock, `now`) with `TierUnavailableError` (writes
   * stay queued). @default 30_000
   */
  timeout?: number
}
