import {
  type CacheEntry,
  ConflictError,
  channels,
  freezeValue,
  globTokensToRegExpSource,
  InvalidOptionError,
  measureValue,
  parseGlob,
  type ResolvedSet,
  resolveSetOptions,
  type SetManyItem,
  type SetOptions,
  type SetResult,
  type SyncCacheStore,
  ValueTooLargeError,
  validateKey,
  validateTtl,
} from '@actor-cache/core'
import type { EvictionPolicy } from './eviction-policy.js'
import { ENTRY_OVERHEAD, type NamespaceState, type Shared, TIER } from './shared.js'
import type { Slot } from './slot.js'
import type { MemCacheCounters } from './stats.js'

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
  readonly #slots: Map<string, Slot>
  readonly #policy: EvictionPolicy
  readonly #counters: MemCacheCounters
  readonly #statistics: boolean
  readonly #defaultTtl: number

  /** @internal Use {@link MemCache.namespace}. */
  constructor(shared: Shared, ns: NamespaceState, defaultTtl: number) {
    this.#shared = shared
    this.#ns = ns
    this.#slots = ns.slots
    this.#policy = shared.policy
    this.#counters = ns.counters
    this.#statistics = shared.statistics
    this.namespace = ns.name
    this.#defaultTtl = defaultTtl
  }

  getSync(key: string): CacheEntry<V> | undefined {
    // A hit proves the key valid (writes validate), so validation runs only on the miss path.
    const slot = this.#slots.get(key)
    if (slot !== undefined) {
      const expiresAt = slot.expiresAt
      if (expiresAt === Number.POSITIVE_INFINITY || this.#live(expiresAt)) {
        this.#policy.onRead(slot)
        if (this.#statistics) this.#counters.hits++
        if (channels.hit.hasSubscribers) {
          channels.hit.publish({ tier: TIER, namespace: this.namespace, key, durationMs: 0 })
        }
        return slot.entry() as CacheEntry<V>
      }
      this.#shared.expire(slot)
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
    const shared = this.#shared
    const now = shared.now()
    // A held key passed validation when it was written (as on the hit path): only a key the
    // namespace lacks is checked, so an overwrite skips the key scan.
    let slot = this.#slots.get(key)
    if (slot === undefined) validateKey(key, this.namespace)
    const membership = shared.membership
    const write = this.#check(key, value, options, now, slot?.value)
    // A getter run by the value walk may have written or removed the key: look it up again then.
    if (shared.membership !== membership) slot = this.#slots.get(key)
    if (slot !== undefined && slot.expiresAt <= now) {
      shared.expire(slot)
      slot = undefined
    }
    const result = this.#resolve(write, slot?.version ?? 0)
    if (result.applied) this.#write(write, result.version, slot)
    else this.#ignored(write.key)
    shared.enforce()
    return result
  }

  deleteSync(key: string): boolean {
    validateKey(key, this.namespace)
    const slot = this.#peek(key, this.#shared.now())
    if (slot === undefined) return false
    this.#shared.remove(slot)
    this.#recordDelete(key, 1)
    return true
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
    const now = this.#shared.now()
    const writes = items.map((item) => {
      validateKey(item.key, this.namespace)
      return this.#check(item.key, item.value, item, now, this.#slots.get(item.key)?.value)
    })
    const versions = new Map<string, number>()
    const results = writes.map((w) => {
      const result = this.#resolve(w, versions.get(w.key) ?? this.#peek(w.key, now)?.version ?? 0)
      if (result.applied) versions.set(w.key, w.dead ? 0 : result.version)
      return result
    })
    writes.forEach((w, i) => {
      const r = results[i] as SetResult
      if (r.applied) this.#write(w, r.version, this.#slots.get(w.key))
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
    return this.#deleteLive(keys)
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
    for (const key of this.#slots.keys()) if (match(key)) doomed.push(key)
    return this.#deleteLive(doomed)
  }

  /** Deletes the live entries among `keys` (expired ones count as expirations); returns how many. */
  #deleteLive(keys: readonly string[]): number {
    const now = this.#shared.now()
    let n = 0
    for (const key of keys) {
      const slot = this.#peek(key, now)
      if (slot === undefined) continue
      this.#shared.remove(slot)
      n++
    }
    if (n > 0) this.#recordDelete(undefined, n)
    return n
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key, this.namespace)
    return this.#peek(key, this.#shared.now()) !== undefined
  }

  async getTTL(key: string): Promise<number | undefined> {
    validateKey(key, this.namespace)
    const now = this.#shared.now()
    const slot = this.#peek(key, now)
    if (slot === undefined) return undefined
    return Math.max(0, slot.expiresAt - now)
  }

  async setTTL(key: string, ttl: number): Promise<boolean> {
    validateKey(key, this.namespace)
    validateTtl(ttl)
    const now = this.#shared.now()
    const slot = this.#peek(key, now)
    if (slot === undefined) return false
    slot.retime(now + ttl)
    return true
  }

  /** Live slot without touching recency or counters (exact clock: used by writes and checks). */
  #peek(key: string, now: number): Slot | undefined {
    const slot = this.#slots.get(key)
    if (slot === undefined) return undefined
    if (slot.expiresAt <= now) {
      this.#shared.expire(slot)
      return undefined
    }
    return slot
  }

  /** Resolves the options and copies (or measures) the value of a write whose key is valid. */
  #check(
    key: string,
    value: V,
    options: SetOptions | number | undefined,
    now: number,
    held: unknown,
  ): CheckedWrite {
    const opts = resolveSetOptions(options, this.#defaultTtl, now)
    let stored: unknown = value
    let size: number
    if (this.#shared.freeze) {
      // the frozen copy the key holds lends the new copy its unchanged parts
      const frozen = freezeValue(value, held)
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

  /**
   * Stores a write over `current`, the slot held under the key (an expired one is replaced like
   * a live one: its expiry is not recorded).
   */
  #write(write: CheckedWrite, version: number, current: Slot | undefined): void {
    const shared = this.#shared
    if (write.dead) {
      if (current !== undefined) shared.remove(current)
    } else if (current === undefined) {
      shared.insert(this.#ns, write.key, write.stored, version, write.opts, write.size)
    } else {
      shared.update(current, write.stored, version, write.opts, write.size)
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
