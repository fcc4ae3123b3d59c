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
  resolveNamespace,
  resolveSetOptions,
  type SetManyItem,
  type SetOptions,
  type SetResult,
  type SyncCacheStore,
  ValueTooLargeError,
  validateKey,
  validateTtl,
} from '@actor-cache/core'
import { LRUCache } from 'lru-cache'
import { CoarseClock } from './clock.js'

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

/** What the LRU of a namespace holds under a key. */
interface Slot {
  entry: CacheEntry
  /** Estimated bytes, counted against the shared budget. */
  size: number
  /** Global access tick of the last read or write: orders entries across namespaces. */
  tick: number
}

/** One namespace: its own LRU (so lookups use the caller's key string as is) and counters. */
interface NamespaceState {
  readonly name: string
  readonly lru: LRUCache<string, Slot>
  readonly counters: MemCacheCounters
}

/**
 * State shared by the tier and its namespace stores: the budget, the clocks, the settings.
 * @internal
 */
class Shared {
  tick = 0
  bytes = 0
  entries = 0
  readonly namespaces = new Map<string, NamespaceState>()
  constructor(
    readonly maxSize: number,
    readonly maxEntries: number,
    readonly maxEntrySize: number,
    readonly freeze: boolean,
    readonly statistics: boolean,
    /** Exact clock, for writes. */
    readonly now: () => number,
    /** Possibly coarse clock, for expiry checks on reads. */
    readonly readNow: () => number,
  ) {}

  state(name: string): NamespaceState {
    let ns = this.namespaces.get(name)
    if (ns === undefined) {
      ns = {
        name,
        counters: newCounters(),
        // Each namespace gets its own LRU; the shared budget is enforced by `enforce`, which
        // evicts the globally least recent entry (the oldest tail tick across namespaces).
        // Sizes are tracked here, not by lru-cache, so every eviction goes through `enforce`.
        lru: new LRUCache<string, Slot>({
          maxSize: Number.MAX_SAFE_INTEGER,
          sizeCalculation: () => 1,
          dispose: (slot) => {
            this.bytes -= slot.size
            this.entries--
          },
        }),
      }
      this.namespaces.set(name, ns)
    }
    return ns
  }

  #lastSweep = 0

  /** Removes every expired entry of every namespace; returns how many. */
  sweep(): number {
    const now = this.now()
    this.#lastSweep = now
    let n = 0
    for (const ns of this.namespaces.values()) {
      const expired: string[] = []
      for (const [key, slot] of ns.lru.entries()) {
        if (slot.entry.expiresAt !== null && slot.entry.expiresAt <= now) expired.push(key)
      }
      for (const key of expired) this.expire(ns, key)
      n += expired.length
    }
    return n
  }

  #over(): boolean {
    return this.bytes > this.maxSize || this.entries > this.maxEntries
  }

  /**
   * Brings the cache within both limits: expired entries go first (a sweep, at most once a
   * second), then the least recently used entries across namespaces.
   */
  enforce(): void {
    if (!this.#over()) return
    if (this.now() - this.#lastSweep >= 1000) this.sweep()
    while (this.#over()) {
      let victim: NamespaceState | undefined
      let victimKey: string | undefined
      let oldest = Number.POSITIVE_INFINITY
      for (const ns of this.namespaces.values()) {
        const key = ns.lru.rkeys().next().value
        if (key === undefined) continue
        const tick = (ns.lru.peek(key) as Slot).tick
        if (tick < oldest) {
          oldest = tick
          victim = ns
          victimKey = key
        }
      }
      if (victim === undefined || victimKey === undefined) return
      const { expiresAt } = (victim.lru.peek(victimKey) as Slot).entry
      if (expiresAt !== null && expiresAt <= this.now()) {
        this.expire(victim, victimKey)
        continue
      }
      victim.lru.delete(victimKey)
      if (this.statistics) victim.counters.evictions++
      if (channels.evict.hasSubscribers) {
        channels.evict.publish({
          tier: TIER,
          namespace: victim.name,
          key: victimKey,
          durationMs: 0,
        })
      }
    }
  }

  /** Removes an expired entry and records it. */
  expire(ns: NamespaceState, key: string): void {
    ns.lru.delete(key)
    if (this.statistics) ns.counters.expirations++
    if (channels.expire.hasSubscribers) {
      channels.expire.publish({ tier: TIER, namespace: ns.name, key, durationMs: 0 })
    }
  }
}

/**
 * The L1 tier: an LRU per namespace (lru-cache) under one shared byte budget and optional entry
 * limit, with TTLs, statistics and a periodic sweep of expired entries.
 */
export class MemCache implements CacheTier {
  readonly tier = TIER
  readonly #shared: Shared
  readonly #defaultTtl: number
  #timer: NodeJS.Timeout | undefined

  constructor(options: MemCacheOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', 'must be an object')
    }
    const maxSize = positiveInt('maxSize', options.maxSize ?? DEFAULT_MAX_SIZE)
    const maxEntries =
      options.maxEntries === undefined
        ? Number.POSITIVE_INFINITY
        : positiveInt('maxEntries', options.maxEntries)
    const maxEntrySize =
      options.maxEntrySize === undefined
        ? Math.max(1, Math.floor(maxSize / 4))
        : positiveInt('maxEntrySize', options.maxEntrySize)
    if (maxEntrySize > maxSize) {
      throw new InvalidOptionError(
        'maxEntrySize',
        `must not exceed maxSize (${maxSize}), got ${maxEntrySize}`,
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
    const statistics = options.enableStatistics ?? true
    if (typeof statistics !== 'boolean') {
      throw new InvalidOptionError(
        'enableStatistics',
        `must be a boolean, got ${String(statistics)}`,
      )
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new InvalidOptionError('now', 'must be a function returning epoch milliseconds')
    }
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
    const now = options.now ?? Date.now
    let readNow = now
    if (options.now === undefined) {
      const clock = new CoarseClock()
      readNow = () => clock.now()
    }
    this.#shared = new Shared(
      maxSize,
      maxEntries,
      maxEntrySize,
      values === 'freeze',
      statistics,
      now,
      readNow,
    )
    if (cleanupInterval > 0) {
      // The timer holds the cache weakly: a cache dropped without close() can still be collected.
      const ref = new WeakRef(this.#shared)
      const timer: NodeJS.Timeout = setInterval(() => {
        const shared = ref.deref()
        if (shared) shared.sweep()
        else clearInterval(timer)
      }, cleanupInterval)
      this.#timer = timer
      this.#timer.unref()
    }
  }

  /**
   * The store of one namespace. Stores of the same namespace share entries and counters.
   * @throws {InvalidKeyError} for a malformed namespace
   */
  namespace<V = unknown>(name: string, options: NamespaceOptions = {}): MemCacheStore<V> {
    const ttl = resolveNamespace(name, options, this.#defaultTtl)
    return new MemCacheStore<V>(this.#shared, this.#shared.state(name), ttl)
  }

  /** Current statistics. */
  stats(): MemCacheStats {
    const total = newCounters()
    const namespaces: MemCacheStats['namespaces'] = {}
    for (const ns of this.#shared.namespaces.values()) {
      const c = ns.counters
      namespaces[ns.name] = { ...c, hitRatio: ratio(c) }
      for (const k of Object.keys(total) as (keyof MemCacheCounters)[]) total[k] += c[k]
    }
    return {
      ...total,
      hitRatio: ratio(total),
      entries: this.#shared.entries,
      bytes: this.#shared.bytes,
      maxSize: this.#shared.maxSize,
      namespaces,
    }
  }

  /** Zeroes the counters (entries stay). */
  resetStats(): void {
    for (const ns of this.#shared.namespaces.values()) Object.assign(ns.counters, newCounters())
  }

  /** Drops expired entries now; returns how many. The cleanup interval calls this. */
  purgeExpired(): number {
    return this.#shared.sweep()
  }

  /** Removes every live entry of every namespace (expired ones count as expirations); returns how many. */
  clearAll(): number {
    this.#shared.sweep()
    const n = this.#shared.entries
    for (const ns of this.#shared.namespaces.values()) ns.lru.clear()
    return n
  }

  /** Stops the cleanup timer. Entries remain readable until the cache is garbage collected. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/** A write that passed validation: its value copied (or measured), its options resolved. */
interface CheckedWrite {
  key: string
  stored: unknown
  size: number
  opts: ResolvedSet
  /** The entry is already expired: writing it removes the key. */
  dead: boolean
}

/**
 * The memory store of one namespace. Implements the synchronous fast path: `getSync` is one
 * map lookup plus an expiry check; the async methods wrap the sync ones.
 */
export class MemCacheStore<V = unknown> implements SyncCacheStore<V> {
  readonly tier = TIER
  readonly sync = true
  readonly namespace: string
  readonly #shared: Shared
  readonly #ns: NamespaceState
  readonly #lru: LRUCache<string, Slot>
  readonly #counters: MemCacheCounters
  readonly #statistics: boolean
  readonly #defaultTtl: number

  /** @internal Use {@link MemCache.namespace}. */
  constructor(shared: Shared, ns: NamespaceState, defaultTtl: number) {
    this.#shared = shared
    this.#ns = ns
    this.#lru = ns.lru
    this.#counters = ns.counters
    this.#statistics = shared.statistics
    this.namespace = ns.name
    this.#defaultTtl = defaultTtl
  }

  getSync(key: string): CacheEntry<V> | undefined {
    // A hit proves the key valid (writes validate), so validation runs only on the miss path.
    const slot = typeof key === 'string' ? this.#lru.get(key) : undefined
    if (slot !== undefined) {
      const entry = slot.entry
      if (entry.expiresAt === null || this.#live(entry.expiresAt)) {
        slot.tick = ++this.#shared.tick
        if (this.#statistics) this.#counters.hits++
        if (channels.hit.hasSubscribers) {
          channels.hit.publish({ tier: TIER, namespace: this.namespace, key, durationMs: 0 })
        }
        return entry as CacheEntry<V>
      }
      this.#shared.expire(this.#ns, key)
    } else {
      validateKey(key, this.namespace)
    }
    if (this.#statistics) this.#counters.misses++
    if (channels.miss.hasSubscribers) {
      channels.miss.publish({ tier: TIER, namespace: this.namespace, key, durationMs: 0 })
    }
    return undefined
  }

  /**
   * Expiry check of the hit path: the coarse clock, and the exact one for entries within a
   * second of expiring (so a stale coarse reading can only matter after a synchronous run of
   * more than a second).
   */
  #live(expiresAt: number): boolean {
    const coarse = this.#shared.readNow()
    if (expiresAt - coarse > 1000) return true
    return expiresAt > this.#shared.now()
  }

  setSync(key: string, value: V, options?: SetOptions | number): SetResult {
    const write = this.#check(key, value, options)
    const result = this.#resolve(write, this.#versionOf(write.key))
    if (result.applied) this.#write(write, result.version)
    else this.#ignored(write.key)
    this.#shared.enforce()
    return result
  }

  deleteSync(key: string): boolean {
    validateKey(key, this.namespace)
    const removed = this.#peek(key) !== undefined && this.#lru.delete(key)
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
      const result = this.#resolve(w, versions.get(w.key) ?? this.#versionOf(w.key))
      if (result.applied) versions.set(w.key, w.dead ? 0 : result.version)
      return result
    })
    writes.forEach((w, i) => {
      const r = results[i] as SetResult
      if (r.applied) this.#write(w, r.version)
      else this.#ignored(w.key)
    })
    this.#shared.enforce()
    return results
  }

  async delete(key: string): Promise<boolean> {
    return this.deleteSync(key)
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) validateKey(key, this.namespace)
    let n = 0
    for (const key of keys) if (this.#peek(key) !== undefined && this.#lru.delete(key)) n++
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

  /** Deletes matching keys; expired ones are recorded as expirations and not counted. */
  #deleteWhere(match: (key: string) => boolean): number {
    const doomed: string[] = []
    for (const key of this.#lru.keys()) if (match(key)) doomed.push(key)
    let n = 0
    for (const key of doomed) if (this.#peek(key) !== undefined && this.#lru.delete(key)) n++
    if (n > 0) this.#recordDelete(undefined, n)
    return n
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key, this.namespace)
    return this.#peek(key) !== undefined
  }

  async getTTL(key: string): Promise<number | undefined> {
    validateKey(key, this.namespace)
    const slot = this.#peek(key)
    if (slot === undefined) return undefined
    const { expiresAt } = slot.entry
    return expiresAt === null ? Infinity : Math.max(0, expiresAt - this.#shared.now())
  }

  async setTTL(key: string, ttl: number): Promise<boolean> {
    validateKey(key, this.namespace)
    validateTtl(ttl)
    const slot = this.#peek(key)
    if (slot === undefined) return false
    const expiresAt = ttl === Infinity ? null : this.#shared.now() + ttl
    slot.entry = Object.freeze({ ...slot.entry, expiresAt })
    return true
  }

  /** Live slot without touching recency or counters (exact clock: used by writes and checks). */
  #peek(key: string): Slot | undefined {
    const slot = this.#lru.peek(key)
    if (slot === undefined) return undefined
    if (slot.entry.expiresAt !== null && slot.entry.expiresAt <= this.#shared.now()) {
      this.#shared.expire(this.#ns, key)
      return undefined
    }
    return slot
  }

  #versionOf(key: string): number {
    return this.#peek(key)?.entry.version ?? 0
  }

  #check(key: string, value: V, options: SetOptions | number | undefined): CheckedWrite {
    validateKey(key, this.namespace)
    const now = this.#shared.now()
    const opts = resolveSetOptions(options, this.#defaultTtl, now)
    let stored: unknown = value
    let size: number
    if (this.#shared.freeze) {
      const frozen = freezeValue(value)
      stored = frozen.value
      size = frozen.size
    } else {
      size = measureValue(value)
    }
    size += ENTRY_OVERHEAD + 16 + key.length
    const limit = this.#shared.maxEntrySize
    if (size > limit)
      throw new ValueTooLargeError(size, limit, { tier: TIER, namespace: this.namespace, key })
    return { key, stored, size, opts, dead: opts.expiresAt !== null && opts.expiresAt <= now }
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
      return { applied: true, version: this.#next(current, write.key) }
    }
    if (version !== undefined) {
      return version < current ? { applied: false, version: current } : { applied: true, version }
    }
    return { applied: true, version: this.#next(current, write.key) }
  }

  #next(current: number, key: string): number {
    if (current >= Number.MAX_SAFE_INTEGER) {
      throw new InvalidOptionError(
        'version',
        `${this.namespace}:${key} is at the largest safe version`,
        {
          tier: TIER,
          namespace: this.namespace,
          key,
        },
      )
    }
    return current + 1
  }

  #write(write: CheckedWrite, version: number): void {
    if (write.dead) {
      this.#lru.delete(write.key)
    } else {
      const entry: CacheEntry = Object.freeze({
        value: write.stored,
        version,
        createdAt: write.opts.createdAt,
        expiresAt: write.opts.expiresAt,
        tags: write.opts.tags,
      })
      const shared = this.#shared
      // dispose() of a replaced slot subtracts its size first; then this one is counted.
      this.#lru.set(write.key, { entry, size: write.size, tick: ++shared.tick })
      shared.bytes += write.size
      shared.entries++
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

  /** A write lost to a newer stored version: published as a set that did not apply. */
  #ignored(key: string): void {
    if (channels.set.hasSubscribers) {
      channels.set.publish({
        tier: TIER,
        namespace: this.namespace,
        key,
        durationMs: 0,
        applied: false,
      })
    }
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
