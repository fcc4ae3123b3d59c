import { type CacheTier, type NamespaceOptions, resolveNamespace } from '@actor-cache/core'
import { CoarseClock } from './clock.js'
import { type MemCacheOptions, resolveOptions } from './options.js'
import { Shared, TIER } from './shared.js'
import { type MemCacheStats, newCounters, summarize } from './stats.js'
import { MemCacheStore } from './store.js'

/**
 * The L1 tier: a key map per namespace under one shared byte budget and optional entry limit,
 * evicting by the configured policy (LRU or W-TinyLFU), with TTLs, statistics and a periodic sweep of expired entries.
 */
export class MemCache implements CacheTier {
  readonly tier = TIER
  readonly #shared: Shared
  readonly #defaultTtl: number
  #timer: NodeJS.Timeout | undefined

  constructor(options: MemCacheOptions = {}) {
    const settings = resolveOptions(options)
    this.#defaultTtl = settings.defaultTtl
    const now = settings.now ?? Date.now
    let readNow = now
    if (settings.now === undefined) {
      const clock = new CoarseClock()
      readNow = () => clock.now()
    }
    this.#shared = new Shared(settings, now, readNow)
    const { cleanupInterval } = settings
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
    const shared = this.#shared
    return summarize(shared.namespaces.values(), {
      entries: shared.entries,
      bytes: shared.bytes,
      maxSize: shared.maxSize,
    })
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
    return this.#shared.clearAll()
  }

  /** Stops the cleanup timer. Entries remain readable until the cache is garbage collected. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
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
