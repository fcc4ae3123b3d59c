import type { CacheEntry, SetResult } from '@actor-cache/core'

/**
 * What the guard calls on a namespace: the public methods of a `TieredNamespace`. Parameters the
 * guard only passes on are typed `never` so that any namespace's own types fit; the guarded
 * namespace keeps those (see {@link GuardableCache}).
 */
export interface GuardableNamespace {
  readonly name: string
  get(key: string): Promise<unknown>
  getOrSet(key: string, loader?: never, options?: never): Promise<unknown>
  getMany(keys: readonly string[], batchLoader?: never): Promise<unknown[]>
  getEntry(key: string): Promise<CacheEntry<unknown> | undefined>
  has(key: string): Promise<boolean>
  getTTL(key: string): Promise<number | undefined>
  setTTL(key: string, ttl: number): Promise<boolean>
  set(key: string, value: never, options?: never): Promise<SetResult>
  delete(key: string, options?: never): Promise<boolean>
  invalidate(target: never): Promise<void>
  clear(): Promise<void>
  stats(): object
}

/** An invalidation target as the guard reads it (the cache validates the rest). */
export interface GuardTarget {
  namespace?: string
  all?: boolean
  keys?: readonly string[]
  patterns?: readonly string[]
  tags?: readonly string[]
}

/**
 * What the guard calls on a cache: the public methods of a `TieredCache`, typed loosely so that
 * a cache typed by its namespaces fits too. The guarded cache has the methods of the cache it
 * wraps, with that cache's own types: `guardCache(cache)` of a `TieredCache<N>` types
 * `namespace(name)` as the `TieredCache<N>` does.
 */
export interface GuardableCache {
  namespace(name: never, policy?: never): GuardableNamespace
  invalidate(target: GuardTarget): Promise<void>
  invalidateByEvent(event: string, params?: Readonly<Record<string, string>>): Promise<void>
  flush(options?: never): Promise<number>
  stats(): object
  close(options?: never): Promise<void>
}
