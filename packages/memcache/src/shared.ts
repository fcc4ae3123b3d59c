import { channels, type ResolvedSet } from '@actor-cache/core'
import { EvictionPolicy } from './eviction-policy.js'
import { hashKey } from './frequency-sketch.js'
import type { Settings } from './options.js'
import { Slot } from './slot.js'
import { type MemCacheCounters, newCounters } from './stats.js'

/** The `tier` of events and errors. */
export const TIER = 'memory'
/** Bytes of bookkeeping per entry: slot, map entry and the envelope readers get. */
export const ENTRY_OVERHEAD = 160

/**
 * One namespace: its own key map (so lookups use the caller's key string as is) and counters.
 * @internal
 */
export interface NamespaceState {
  readonly name: string
  readonly slots: Map<string, Slot>
  readonly counters: MemCacheCounters
  /** Seeds the hashes of this namespace's keys (see `hashKey`). */
  readonly seed: number
}

/**
 * State shared by the tier and its namespace stores: the entries, the budget, the clocks, the
 * settings. Every entry is stored, replaced and removed here, so the totals and the eviction
 * policy always agree with the key maps.
 * @internal
 */
export class Shared {
  bytes = 0
  entries = 0
  /**
   * Counts inserts and removals of slots in any namespace: a write that looked its slot up before
   * walking the value (whose getters can run code) looks it up again only when this moved.
   */
  membership = 0
  readonly namespaces = new Map<string, NamespaceState>()
  readonly policy: EvictionPolicy
  readonly maxSize: number
  readonly maxEntries: number
  readonly maxEntrySize: number
  readonly freeze: boolean
  readonly statistics: boolean
  /** Random per cache: key hashes (and so sketch collisions) cannot be predicted from outside. */
  readonly #seed = (Math.random() * 2 ** 32) | 0

  constructor(
    settings: Settings,
    /** Exact clock, for writes. */
    readonly now: () => number,
    /** Possibly coarse clock, for expiry checks on reads. */
    readonly readNow: () => number,
  ) {
    this.maxSize = settings.maxSize
    this.maxEntries = settings.maxEntries
    this.maxEntrySize = settings.maxEntrySize
    this.freeze = settings.freeze
    this.statistics = settings.statistics
    this.policy = new EvictionPolicy(settings.evictionPolicy, this, this.#seed)
  }

  state(name: string): NamespaceState {
    let ns = this.namespaces.get(name)
    if (ns === undefined) {
      ns = { name, slots: new Map(), counters: newCounters(), seed: hashKey(this.#seed, name) }
      this.namespaces.set(name, ns)
    }
    return ns
  }

  /** Stores a new entry under a key the namespace does not hold. */
  insert(
    ns: NamespaceState,
    key: string,
    value: unknown,
    version: number,
    opts: ResolvedSet,
    size: number,
  ): void {
    const slot = new Slot(key, ns, size)
    slot.store(value, version, opts)
    ns.slots.set(key, slot)
    this.bytes += size
    this.entries++
    this.membership++
    this.policy.onInsert(slot)
  }

  /** Replaces the entry of a held slot. */
  update(slot: Slot, value: unknown, version: number, opts: ResolvedSet, size: number): void {
    const delta = size - slot.size
    slot.store(value, version, opts)
    slot.size = size
    this.bytes += delta
    this.policy.onUpdate(slot, delta)
  }

  /** Removes a held slot (counting nothing: callers record why). */
  remove(slot: Slot): void {
    slot.ns.slots.delete(slot.key)
    this.bytes -= slot.size
    this.entries--
    this.membership++
    this.policy.onRemove(slot)
  }

  #lastSweep = 0

  /** Removes every expired entry of every namespace; returns how many. */
  sweep(): number {
    const now = this.now()
    this.#lastSweep = now
    let n = 0
    for (const ns of this.namespaces.values()) {
      const expired: Slot[] = []
      for (const slot of ns.slots.values()) {
        if (slot.expiresAt <= now) expired.push(slot)
      }
      for (const slot of expired) this.expire(slot)
      n += expired.length
    }
    return n
  }

  /** Removes every entry of every namespace (expired ones first, as expirations); returns how many live ones. */
  clearAll(): number {
    this.sweep()
    const n = this.entries
    for (const ns of this.namespaces.values()) {
      for (const slot of [...ns.slots.values()]) this.remove(slot)
    }
    return n
  }

  #over(): boolean {
    return this.bytes > this.maxSize || this.entries > this.maxEntries
  }

  /**
   * Brings the cache within both limits: expired entries go first (a sweep, at most once a
   * second), then the entries the eviction policy picks.
   */
  enforce(): void {
    if (!this.#over()) return
    if (this.now() - this.#lastSweep >= 1000) this.sweep()
    while (this.#over()) {
      const victim = this.policy.victim()
      if (victim === undefined) return
      const { expiresAt } = victim
      if (expiresAt !== Number.POSITIVE_INFINITY && expiresAt <= this.now()) {
        this.expire(victim)
        continue
      }
      this.remove(victim)
      const ns = victim.ns
      if (this.statistics) ns.counters.evictions++
      if (channels.evict.hasSubscribers) {
        channels.evict.publish({ tier: TIER, namespace: ns.name, key: victim.key, durationMs: 0 })
      }
    }
  }

  /** Removes an expired entry and records it. */
  expire(slot: Slot): void {
    this.remove(slot)
    const ns = slot.ns
    if (this.statistics) ns.counters.expirations++
    if (channels.expire.hasSubscribers) {
      channels.expire.publish({ tier: TIER, namespace: ns.name, key: slot.key, durationMs: 0 })
    }
  }
}
