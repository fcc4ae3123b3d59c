import { type CacheEntry, channels } from '@actor-cache/core'
import { LRUCache } from 'lru-cache'
import { type MemCacheCounters, newCounters } from './stats.js'

/** The `tier` of events and errors. */
export const TIER = 'memory'
/** Bytes of bookkeeping per entry: envelope object, LRU slots and map entry. */
export const ENTRY_OVERHEAD = 160

/** What the LRU of a namespace holds under a key. */
export interface Slot {
  entry: CacheEntry
  /** Estimated bytes, counted against the shared budget. */
  size: number
  /** Global access tick of the last read or write: orders entries across namespaces. */
  tick: number
}

/** One namespace: its own LRU (so lookups use the caller's key string as is) and counters. */
export interface NamespaceState {
  readonly name: string
  readonly lru: LRUCache<string, Slot>
  readonly counters: MemCacheCounters
}

/**
 * State shared by the tier and its namespace stores: the budget, the clocks, the settings.
 * @internal
 */
export class Shared {
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
