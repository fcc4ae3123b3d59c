import {
  type CacheEntry,
  type CacheTier,
  ConflictError,
  channels,
  freezeValue,
  globTokensToRegExpSource,
  InvalidOptionError,
  measureValue,
  type NamespaceOptions,
  parseGlob,
  type ResolvedSet,
  resolveSetOptions,
  type SetManyItem,
  type SetOptions,
  type SetResult,
  type SyncCacheStore,
  ValueTooLargeError,
  validateKey,
  validateNamespace,
  validateTtl,
} from '@actor-cache/core'
import { LRUCache } from 'lru-cache'

/** How values are protected from callers that mutate what they stored or read. */
export type ValueMode = 'freeze' | 'reference'

/** Options of {@link createMemCache}; the normalised `mem_cache` config section fits as is. */
export interface MemCacheOptions {
  /**
   * Memory budget in bytes, across all namespaces. Entry sizes are estimates of their V8 heap
   * footprint (value, key and bookkeeping); least recently used entries are evicted beyond it.
   * @default 104_857_600 (100 MB)
   */
  maxSize?: number
  /** Most entries held, across all namespaces. @default unlimited (bounded by maxSize) */
  maxEntries?: number | undefined
  /** Largest single entry in bytes; larger writes throw `ValueTooLargeError`. @default maxSize / 4 */
  maxEntrySize?: number | undefined
  /** TTL in ms for writes that give none; `Infinity` for none. @default Infinity */
  defaultTtl?: number
  /** Only `'lru'` exists today. @default 'lru' */
  evictionPolicy?: 'lru'
  /** Count hits, misses, sets, deletes, evictions and expirations. @default true */
  enableStatistics?: boolean
  /**
   * Interval in ms of the sweep that drops expired entries (expired entries are never served
   * either way; the sweep frees their memory). 0 disables it. The timer never keeps the process
   * alive. @default 60_000
   */
  cleanupInterval?: number
  /**
   * `'freeze'`: writes store a validated, deeply frozen copy; every read returns that same
   * object, so reads cost no copy and nobody can corrupt the cache. `'reference'`: writes are
   * validated but stored as given; the caller promises never to mutate stored or returned values.
   * @default 'freeze'
   */
  values?: ValueMode
  /** Clock in epoch ms (tests inject a fake one). @default Date.now */
  now?: () => number
}

/** Counters of the memory tier, overall or for one namespace. */
export interface MemCacheCounters {
  hits: number
  misses: number
  sets: number
  deletes: number
  evictions: number
  expirations: number
}

/** Statistics of a {@link MemCache}. */
export interface MemCacheStats extends MemCacheCounters {
  /** hits / (hits + misses), 0 when there were no reads. */
  hitRatio: number
  /** Entries held now. */
  entries: number
  /** Estimated bytes held now. */
  bytes: number
  /** Configured budget in bytes. */
  maxSize: number
  /** The same counters per namespace. */
  namespaces: Record<string, MemCacheCounters & { hitRatio: number }>
}

const TIER = 'memory'
/** Bytes of bookkeeping per entry: envelope object, LRU slots and map entry. */
const ENTRY_OVERHEAD = 160
const DEFAULT_MAX_SIZE = 100 * 1024 * 1024

const newCounters = (): MemCacheCounters => ({
  hits: 0,
  misses: 0,
  sets: 0,
  deletes: 0,
  evictions: 0,
  expirations: 0,
})
const ratio = (c: MemCacheCounters): number =>
  c.hits + c.misses === 0 ? 0 : c.hits / (c.hits + c.misses)

function positiveInt(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidOptionError(name, `must be a positive integer, got ${String(value)}`)
  }
  return value
}

const splitKey = (full: string): { namespace: string; key: string } => {
  const i = full.indexOf(':')
  return { namespace: full.slice(0, i), key: full.slice(i + 1) }
}

/**
 * The L1 tier: one LRU (lru-cache) shared by all namespaces, with a byte budget, optional entry
 * limit, TTLs, statistics and a periodic sweep of expired entries.
 */
export class MemCache implements CacheTier {
  readonly tier = TIER
  readonly #lru: LRUCache<string, CacheEntry>
  readonly #counters = new Map<string, MemCacheCounters>()
  readonly #defaultTtl: number
  readonly #maxSize: number
  readonly #maxEntrySize: number
  readonly #statistics: boolean
  readonly #freeze: boolean
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined

  constructor(options: MemCacheOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', 'must be an object')
    }
    this.#maxSize = positiveInt('maxSize', options.maxSize ?? DEFAULT_MAX_SIZE)
    const maxEntries =
      options.maxEntries === undefined ? undefined : positiveInt('maxEntries', options.maxEntries)
    this.#maxEntrySize =
      options.maxEntrySize === undefined
        ? Math.max(1, Math.floor(this.#maxSize / 4))
        : positiveInt('maxEntrySize', options.maxEntrySize)
    if (this.#maxEntrySize > this.#maxSize) {
      throw new InvalidOptionError(
        'maxEntrySize',
        `must not exceed maxSize (${this.#maxSize}), got ${this.#maxEntrySize}`,
      )
    }
    this.#defaultTtl = validateTtl(options.defaultTtl ?? Infinity, 'defaultTtl')
    if (options.evictionPolicy !== undefined && options.evictionPolicy !== 'lru') {
      throw new InvalidOptionError(
        'evictionPolicy',
        `must be "lru", got ${JSON.stringify(options.evictionPolicy)}`,
      )
    }
    const values = options.values ?? 'freeze'
    if (values !== 'freeze' && values !== 'reference') {
      throw new InvalidOptionError(
        'values',
        `must be "freeze" or "reference", got ${JSON.stringify(values)}`,
      )
    }
    this.#freeze = values === 'freeze'
    this.#statistics = options.enableStatistics ?? true
    if (typeof this.#statistics !== 'boolean') {
      throw new InvalidOptionError(
        'enableStatistics',
        `must be a boolean, got ${String(this.#statistics)}`,
      )
    }
    this.#now = options.now ?? Date.now
    if (typeof this.#now !== 'function') throw new InvalidOptionError('now', 'must be a function')
    const cleanupInterval = options.cleanupInterval ?? 60_000
    if (
      typeof cleanupInterval !== 'number' ||
      !(cleanupInterval >= 0) ||
      !Number.isFinite(cleanupInterval)
    ) {
      throw new InvalidOptionError(
        'cleanupInterval',
        `must be a non-negative number of ms, got ${String(cleanupInterval)}`,
      )
    }

    this.#lru = new LRUCache<string, CacheEntry>({
      maxSize: this.#maxSize,
      maxEntrySize: this.#maxEntrySize,
      ...(maxEntries === undefined ? {} : { max: maxEntries }),
      dispose: (_entry, fullKey, reason) => {
        if (reason !== 'evict') return
        const ns = splitKey(fullKey)
        if (this.#statistics) this.#countersOf(ns.namespace).evictions++
        if (channels.evict.hasSubscribers) {
          channels.evict.publish({
            tier: TIER,
            namespace: ns.namespace,
            key: ns.key,
            durationMs: 0,
          })
        }
      },
    })
    if (cleanupInterval > 0) {
      this.#timer = setInterval(() => this.purgeExpired(), cleanupInterval)
      this.#timer.unref()
    }
  }

  /**
   * The store of one namespace. Stores of the same namespace share entries and counters.
   * @throws {InvalidKeyError} for a malformed namespace
   */
  namespace<V = unknown>(name: string, options: NamespaceOptions = {}): MemCacheStore<V> {
    validateNamespace(name)
    const ttl =
      options.defaultTtl === undefined
        ? this.#defaultTtl
        : validateTtl(options.defaultTtl, 'defaultTtl')
    return new MemCacheStore<V>(this, name, ttl, this.#countersOf(name))
  }

  /** Current statistics. */
  stats(): MemCacheStats {
    const total = newCounters()
    const namespaces: MemCacheStats['namespaces'] = {}
    for (const [ns, c] of this.#counters) {
      namespaces[ns] = { ...c, hitRatio: ratio(c) }
      for (const k of Object.keys(total) as (keyof MemCacheCounters)[]) total[k] += c[k]
    }
    return {
      ...total,
      hitRatio: ratio(total),
      entries: this.#lru.size,
      bytes: this.#lru.calculatedSize,
      maxSize: this.#maxSize,
      namespaces,
    }
  }

  /** Zeroes the counters (entries stay). */
  resetStats(): void {
    for (const c of this.#counters.values()) Object.assign(c, newCounters())
  }

  /** Drops expired entries now; returns how many. The cleanup interval calls this. */
  purgeExpired(): number {
    const now = this.#now()
    const expired: string[] = []
    for (const [key, entry] of this.#lru.entries()) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) expired.push(key)
    }
    for (const key of expired) this._expire(key)
    return expired.length
  }

  /** Removes every entry of every namespace; returns how many. */
  clearAll(): number {
    const n = this.#lru.size
    this.#lru.clear()
    return n
  }

  /** Stops the cleanup timer. Entries remain readable until the cache is garbage collected. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  #countersOf(namespace: string): MemCacheCounters {
    const c = this.#counters.get(namespace) ?? newCounters()
    this.#counters.set(namespace, c)
    return c
  }

  // Internals shared with MemCacheStore (same module, not exported from the package).

  /** @internal */
  get _lru(): LRUCache<string, CacheEntry> {
    return this.#lru
  }
  /** @internal */
  get _statistics(): boolean {
    return this.#statistics
  }
  /** @internal */
  get _freeze(): boolean {
    return this.#freeze
  }
  /** @internal */
  get _maxEntrySize(): number {
    return this.#maxEntrySize
  }
  /** @internal */
  get _clock(): () => number {
    return this.#now
  }
  /** @internal Removes an expired entry and records it. */
  _expire(fullKey: string): void {
    this.#lru.delete(fullKey)
    const ns = splitKey(fullKey)
    if (this.#statistics) this.#countersOf(ns.namespace).expirations++
    if (channels.expire.hasSubscribers) {
      channels.expire.publish({ tier: TIER, namespace: ns.namespace, key: ns.key, durationMs: 0 })
    }
  }
}

/** A write that passed validation: its value copied (or measured), its options resolved. */
interface CheckedWrite {
  key: string
  fullKey: string
  stored: unknown
  size: number
  opts: ResolvedSet
  /** The entry is already expired: writing it removes the key. */
  dead: boolean
}

/**
 * The memory store of one namespace. Implements the synchronous fast path: `getSync` is a map
 * lookup plus an expiry check; the async methods wrap the sync ones.
 */
export class MemCacheStore<V = unknown> implements SyncCacheStore<V> {
  readonly tier = TIER
  readonly sync = true
  readonly namespace: string
  readonly #cache: MemCache
  readonly #lru: LRUCache<string, CacheEntry>
  readonly #prefix: string
  readonly #defaultTtl: number
  readonly #counters: MemCacheCounters
  readonly #statistics: boolean
  readonly #now: () => number

  /** @internal Use {@link MemCache.namespace}. */
  constructor(cache: MemCache, namespace: string, defaultTtl: number, counters: MemCacheCounters) {
    this.#cache = cache
    this.#lru = cache._lru
    this.namespace = namespace
    this.#prefix = `${namespace}:`
    this.#defaultTtl = defaultTtl
    this.#counters = counters
    this.#statistics = cache._statistics
    this.#now = cache._clock
  }

  getSync(key: string): CacheEntry<V> | undefined {
    // A hit proves the key valid (writes validate), so validation runs only on the miss path.
    const entry = typeof key === 'string' ? this.#lru.get(this.#prefix + key) : undefined
    if (entry !== undefined && (entry.expiresAt === null || entry.expiresAt > this.#now())) {
      if (this.#statistics) this.#counters.hits++
      if (channels.hit.hasSubscribers) {
        channels.hit.publish({ tier: TIER, namespace: this.namespace, key, durationMs: 0 })
      }
      return entry as CacheEntry<V>
    }
    if (entry !== undefined) this.#cache._expire(this.#prefix + key)
    else validateKey(key, this.namespace)
    if (this.#statistics) this.#counters.misses++
    if (channels.miss.hasSubscribers) {
      channels.miss.publish({ tier: TIER, namespace: this.namespace, key, durationMs: 0 })
    }
    return undefined
  }

  setSync(key: string, value: V, options?: SetOptions | number): SetResult {
    const write = this.#check(key, value, options)
    const result = this.#resolve(write, this.#versionOf(write.fullKey))
    if (result.applied) this.#write(write, result.version)
    return result
  }

  deleteSync(key: string): boolean {
    validateKey(key, this.namespace)
    const removed = this.#lru.delete(this.#prefix + key)
    if (removed) this.#recordDelete(key, 1)
    return removed
  }

  async get(key: string): Promise<CacheEntry<V> | undefined> {
    return this.getSync(key)
  }

  async getMany(keys: readonly string[]): Promise<(CacheEntry<V> | undefined)[]> {
    for (const key of keys) validateKey(key, this.namespace)
    return keys.map((key) => this.getSync(key))
  }

  async set(key: string, value: V, options?: SetOptions | number): Promise<SetResult> {
    return this.setSync(key, value, options)
  }

  async setMany(items: readonly SetManyItem<V>[]): Promise<SetResult[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
    // All or nothing: validate every item and resolve every version (later items of the same
    // key see earlier ones) before the first write.
    const writes = items.map((item) => this.#check(item.key, item.value, item))
    const versions = new Map<string, number>()
    const results = writes.map((w) => {
      const current = versions.get(w.fullKey) ?? this.#versionOf(w.fullKey)
      const result = this.#resolve(w, current)
      if (result.applied) versions.set(w.fullKey, w.dead ? 0 : result.version)
      return result
    })
    writes.forEach((w, i) => {
      const r = results[i] as SetResult
      if (r.applied) this.#write(w, r.version)
    })
    return results
  }

  async delete(key: string): Promise<boolean> {
    return this.deleteSync(key)
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) validateKey(key, this.namespace)
    let n = 0
    for (const key of keys) if (this.#lru.delete(this.#prefix + key)) n++
    if (n > 0) this.#recordDelete(undefined, n)
    return n
  }

  async deletePattern(pattern: string): Promise<number> {
    const re = new RegExp(globTokensToRegExpSource(parseGlob(pattern)), 'su')
    return this.#deleteWhere((key) => re.test(key))
  }

  async clear(): Promise<number> {
    return this.#deleteWhere(() => true)
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key, this.namespace)
    return this.#peek(this.#prefix + key) !== undefined
  }

  async getTTL(key: string): Promise<number | undefined> {
    validateKey(key, this.namespace)
    const entry = this.#peek(this.#prefix + key)
    if (entry === undefined) return undefined
    return entry.expiresAt === null ? Infinity : entry.expiresAt - this.#now()
  }

  async setTTL(key: string, ttl: number): Promise<boolean> {
    validateKey(key, this.namespace)
    validateTtl(ttl)
    const fullKey = this.#prefix + key
    const entry = this.#peek(fullKey)
    if (entry === undefined) return false
    const size = this.#lru.info(fullKey)?.size ?? 0
    const expiresAt = ttl === Infinity ? null : this.#now() + ttl
    this.#lru.set(fullKey, Object.freeze({ ...entry, expiresAt }), { size, noDisposeOnSet: true })
    return true
  }

  /** Live entry without touching recency or counters. */
  #peek(fullKey: string): CacheEntry | undefined {
    const entry = this.#lru.peek(fullKey)
    if (entry === undefined) return undefined
    if (entry.expiresAt !== null && entry.expiresAt <= this.#now()) {
      this.#cache._expire(fullKey)
      return undefined
    }
    return entry
  }

  #versionOf(fullKey: string): number {
    return this.#peek(fullKey)?.version ?? 0
  }

  #check(key: string, value: V, options: SetOptions | number | undefined): CheckedWrite {
    validateKey(key, this.namespace)
    const now = this.#now()
    const opts = resolveSetOptions(options, this.#defaultTtl, now)
    let stored: unknown = value
    let size: number
    if (this.#cache._freeze) {
      const frozen = freezeValue(value)
      stored = frozen.value
      size = frozen.size
    } else {
      size = measureValue(value)
    }
    const fullKey = this.#prefix + key
    size += ENTRY_OVERHEAD + 16 + fullKey.length
    const limit = this.#cache._maxEntrySize
    if (size > limit)
      throw new ValueTooLargeError(size, limit, { tier: TIER, namespace: this.namespace, key })
    return {
      key,
      fullKey,
      stored,
      size,
      opts,
      dead: opts.expiresAt !== null && opts.expiresAt <= now,
    }
  }

  #resolve(write: CheckedWrite, current: number): SetResult {
    const { expectedVersion, version } = write.opts
    if (expectedVersion !== undefined) {
      if (expectedVersion !== current) {
        throw new ConflictError(expectedVersion, current, {
          tier: TIER,
          namespace: this.namespace,
          key: write.key,
        })
      }
      return { applied: true, version: current + 1 }
    }
    if (version !== undefined) {
      return version < current ? { applied: false, version: current } : { applied: true, version }
    }
    return { applied: true, version: current + 1 }
  }

  #write(write: CheckedWrite, version: number): void {
    if (write.dead) {
      this.#lru.delete(write.fullKey)
    } else {
      const entry: CacheEntry = Object.freeze({
        value: write.stored,
        version,
        createdAt: write.opts.createdAt,
        expiresAt: write.opts.expiresAt,
        tags: write.opts.tags,
      })
      this.#lru.set(write.fullKey, entry, { size: write.size })
    }
    if (this.#statistics) this.#counters.sets++
    if (channels.set.hasSubscribers) {
      channels.set.publish({
        tier: TIER,
        namespace: this.namespace,
        key: write.key,
        durationMs: 0,
        applied: true,
      })
    }
  }

  #deleteWhere(match: (key: string) => boolean): number {
    const doomed: string[] = []
    const prefix = this.#prefix
    for (const fullKey of this.#lru.keys()) {
      if (fullKey.startsWith(prefix) && match(fullKey.slice(prefix.length))) doomed.push(fullKey)
    }
    for (const fullKey of doomed) this.#lru.delete(fullKey)
    if (doomed.length > 0) this.#recordDelete(undefined, doomed.length)
    return doomed.length
  }

  #recordDelete(key: string | undefined, count: number): void {
    if (this.#statistics) this.#counters.deletes += count
    if (channels.delete.hasSubscribers) {
      channels.delete.publish({
        tier: TIER,
        namespace: this.namespace,
        ...(key === undefined ? {} : { key }),
        count,
        durationMs: 0,
      })
    }
  }
}

/**
 * Creates the L1 memory tier.
 * @example
 * const l1 = createMemCache({ maxSize: 64 * 1024 * 1024, defaultTtl: 300_000 })
 * const actors = l1.namespace<PrimaryCore>('primary_core')
 * await actors.set('actor:123', core)
 * @throws {InvalidOptionError} naming the option and value
 */
export function createMemCache(options: MemCacheOptions = {}): MemCache {
  return new MemCache(options)
}
