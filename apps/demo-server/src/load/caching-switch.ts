import type { CacheEntry, CacheStore, CacheTier, SetResult } from '@actor-cache/core'
import type { GuardableCache, GuardableNamespace, GuardTarget } from '@actor-cache/security'
import type { TieredNamespace } from '@actor-cache/strategies'
import type { DemoCache } from '../stack.js'

/**
 * The load generator's switch: with caching off, every read of the server goes to the store of
 * record (no L1, no L2), so one server can be measured with and without its caches.
 */
export interface CachingSwitch {
  /** The cache the guard wraps: the demo's cache, reads routed by the switch. */
  readonly cache: DemoCache
  /** True while reads use the caches (the default). */
  readonly enabled: boolean
  setEnabled(enabled: boolean): void
}

type AnyNamespace = TieredNamespace<unknown>

/**
 * A namespace whose reads go to the store of record while caching is off. Writes, TTLs and
 * invalidations always go to the tiered namespace: a write keeps its strategy (and its change
 * record); only where reads are answered from changes.
 */
class SwitchedNamespace implements GuardableNamespace {
  readonly name: string
  readonly #inner: AnyNamespace
  readonly #record: CacheStore<unknown>
  readonly #state: { enabled: boolean }

  constructor(inner: AnyNamespace, record: CacheStore<unknown>, state: { enabled: boolean }) {
    this.name = inner.name
    this.#inner = inner
    this.#record = record
    this.#state = state
  }

  /** The guard forwards the strategy (configuration) to its callers. */
  get strategy(): unknown {
    return this.#inner.strategy
  }

  get(key: string): Promise<unknown> {
    if (this.#state.enabled) return this.#inner.get(key)
    return this.#record.get(key).then((e) => e?.value)
  }

  getOrSet(key: string, loader?: never, options?: never): Promise<unknown> {
    if (this.#state.enabled) return this.#inner.getOrSet(key, loader, options)
    // forceFresh: the record, else the loader; no cached copy answers
    return this.#inner.getOrSet(key, loader, { forceFresh: true })
  }

  getMany(keys: readonly string[], batchLoader?: never): Promise<unknown[]> {
    if (this.#state.enabled) return this.#inner.getMany(keys, batchLoader)
    // one read per key: the record's batch read publishes no read events to count
    return Promise.all(keys.map((k) => this.get(k)))
  }

  getEntry(key: string): Promise<CacheEntry<unknown> | undefined> {
    if (this.#state.enabled) return this.#inner.getEntry(key)
    return this.#record.get(key)
  }

  async has(key: string): Promise<boolean> {
    return (await this.getEntry(key)) !== undefined
  }

  getTTL(key: string): Promise<number | undefined> {
    return this.#inner.getTTL(key)
  }

  setTTL(key: string, ttl: number): Promise<boolean> {
    return this.#inner.setTTL(key, ttl)
  }

  set(key: string, value: never, options?: never): Promise<SetResult> {
    return this.#inner.set(key, value, options)
  }

  delete(key: string, options?: never): Promise<boolean> {
    return this.#inner.delete(key, options)
  }

  invalidate(target: never): Promise<void> {
    return this.#inner.invalidate(target)
  }

  clear(): Promise<void> {
    return this.#inner.clear()
  }

  stats(): object {
    return this.#inner.stats()
  }
}

/** The demo's cache with {@link SwitchedNamespace}s: what the access guard wraps. */
class SwitchedCache implements GuardableCache {
  readonly #inner: DemoCache
  readonly #record: CacheTier
  readonly #state: { enabled: boolean }
  readonly #namespaces = new Map<string, SwitchedNamespace>()

  constructor(inner: DemoCache, record: CacheTier, state: { enabled: boolean }) {
    this.#inner = inner
    this.#record = record
    this.#state = state
  }

  namespace(name: never, policy?: never): GuardableNamespace {
    const known = this.#namespaces.get(name)
    if (known !== undefined && policy === undefined) return known
    const inner = this.#inner.namespace(name, policy) as unknown as AnyNamespace
    const switched = new SwitchedNamespace(inner, this.#record.namespace(name), this.#state)
    this.#namespaces.set(name, switched)
    return switched
  }

  invalidate(target: GuardTarget): Promise<void> {
    return this.#inner.invalidate(target as never)
  }

  invalidateByEvent(event: string, params?: Readonly<Record<string, string>>): Promise<void> {
    return this.#inner.invalidateByEvent(event, params)
  }

  flush(options?: never): Promise<number> {
    return this.#inner.flush(options)
  }

  stats(): object {
    return this.#inner.stats()
  }

  close(options?: never): Promise<void> {
    return this.#inner.close(options)
  }
}

/**
 * The switch over `cache`: while enabled, every call goes to the cache unchanged (one flag test
 * more per read); while disabled, reads are answered by `record` (the cache's store of record).
 */
export function createCachingSwitch(cache: DemoCache, record: CacheTier): CachingSwitch {
  const state = { enabled: true }
  // the guard calls only GuardableCache's methods; it types its views by the cache it is given
  const switched = new SwitchedCache(cache, record, state) as unknown as DemoCache
  return {
    cache: switched,
    get enabled() {
      return state.enabled
    },
    setEnabled(enabled) {
      state.enabled = enabled
    },
  }
}
