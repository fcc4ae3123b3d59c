import {
  type CacheEntry,
  type CacheStore,
  type InvalidationMessage,
  InvalidOptionError,
  type SetResult,
  type SyncCacheStore,
} from '@actor-cache/core'
import { BatchRead } from './batch-read.js'
import { FillGuard } from './fill-guard.js'
import { Flights } from './flights.js'
import { Freshness } from './freshness.js'
import type { InvalidationTarget } from './invalidation.js'
import { LoaderRunner } from './loader-runner.js'
import {
  type NamespaceContext,
  type NamespaceParts,
  type NamespaceStats,
  type NamespaceTiers,
  newStats,
} from './namespace-context.js'
import { NegativeCache } from './negative-cache.js'
import type { BatchLoader, Loader, RecordStore, ResolvedPolicy } from './policy.js'
import { ReadPath } from './read-path.js'
import { TierStack } from './tier-stack.js'
import { UnflushedWrites } from './unflushed-writes.js'
import { WriteBehind } from './write-behind.js'
import { WriteThrough } from './write-through.js'
import { type TieredSetOptions, Writes } from './writes.js'

export type { NamespaceContext, NamespaceStats, NamespaceTiers } from './namespace-context.js'
export type { TieredSetOptions } from './writes.js'

/**
 * One namespace (entity type) of a {@link TieredCache}: reads through L1 → L2 → L3 → loader with
 * backfill, writes by the namespace's strategy. Get it from `cache.namespace(name)`.
 */
export class TieredNamespace<V = unknown> {
  /** Namespace name. */
  readonly name: string
  readonly #ctx: NamespaceContext
  readonly #tags: NamespaceContext['tags']
  readonly #p: ResolvedPolicy<V>
  readonly #tiers: TierStack<V>
  readonly #unflushed: UnflushedWrites<V>
  readonly #l1: CacheStore<V> | undefined
  readonly #l1sync: SyncCacheStore<V> | undefined
  readonly #caches: CacheStore<V>[]
  readonly #coord: number
  readonly #record: RecordStore<V> | undefined
  readonly #plain: boolean
  readonly #flights = new Flights<V>()
  readonly #guard = new FillGuard(this.#flights)
  readonly #negative: NegativeCache
  readonly #freshness: Freshness<V>
  readonly #reads: ReadPath<V>
  readonly #batch: BatchRead<V>
  readonly #writes: Writes<V>
  readonly #stats: NamespaceStats = newStats()

  /** @internal use `cache.namespace(name)` */
  constructor(
    name: string,
    policy: ResolvedPolicy<V>,
    tiers: NamespaceTiers<V>,
    ctx: NamespaceContext,
  ) {
    this.name = name
    this.#p = policy
    this.#ctx = ctx
    this.#tags = ctx.tags
    this.#plain = policy.grace === 0 && !policy.refreshAhead
    this.#negative = new NegativeCache(this.#stats)
    this.#freshness = new Freshness(policy, ctx, this.#stats, (key, e, now, loader) =>
      loads.refreshAhead(key, e, now, loader),
    )
    this.#tiers = new TierStack(name, policy, tiers, {
      ctx,
      guard: this.#guard,
      freshness: this.#freshness,
      stats: this.#stats,
    })
    this.#unflushed = new UnflushedWrites(this.#tiers, ctx.now, this.#stats)
    this.#l1 = this.#tiers.l1
    this.#l1sync = this.#tiers.l1sync
    this.#caches = this.#tiers.caches
    this.#coord = this.#tiers.coord
    this.#record = this.#tiers.record
    const parts: NamespaceParts<V> = {
      name,
      policy,
      ctx,
      stats: this.#stats,
      tiers: this.#tiers,
      guard: this.#guard,
      flights: this.#flights,
      freshness: this.#freshness,
      negative: this.#negative,
      unflushed: this.#unflushed,
    }
    const loads = new LoaderRunner(parts)
    this.#reads = new ReadPath(parts, loads)
    this.#batch = new BatchRead(parts, loads)
    this.#writes = new Writes(parts, {
      through: new WriteThrough(parts),
      behind: new WriteBehind(parts),
    })
    ctx.lifeUsed(policy.ttl + policy.grace)
  }

  /** The namespace's write strategy. */
  get strategy(): ResolvedPolicy<V>['strategy'] {
    return this.#p.strategy
  }

  /** A copy of the namespace's counters. */
  stats(): NamespaceStats {
    return { ...this.#stats }
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  /**
   * The value under `key`: L1, then lower tiers (backfilling the ones above), then the store of
   * record, then the namespace's loader if it has one. `undefined` when nothing has it.
   * @throws {InvalidKeyError} before any I/O for a bad key
   */
  get(key: string): Promise<V | undefined> {
    const l1 = this.#l1sync
    if (l1 !== undefined) {
      let e: CacheEntry<V> | undefined
      try {
        e = l1.getSync(key)
      } catch (error) {
        return Promise.reject(error)
      }
      if (
        e !== undefined &&
        (this.#plain
          ? e.tags.length === 0 || !this.#tags.isStale(e.tags, e.createdAt)
          : this.#freshness.usable(key, e, this.#p.loader))
      ) {
        return Promise.resolve(e.value)
      }
    }
    return this.#reads.read(key, this.#p.loader)
  }

  /**
   * Like {@link get}, with `loader` (or the namespace's) called on a miss. However many callers
   * ask for the same key at once, the loader runs once per process (and once across instances
   * when the cache has a lock provider).
   * @throws {InvalidOptionError} when there is neither `loader` nor a namespace loader
   */
  getOrSet(key: string, loader?: Loader<V>): Promise<V | undefined> {
    const fn = loader ?? this.#p.loader
    if (typeof fn !== 'function') {
      return Promise.reject(
        new InvalidOptionError(
          'loader',
          `namespace "${this.name}" has no loader; pass one to getOrSet`,
        ),
      )
    }
    const l1 = this.#l1sync
    if (l1 !== undefined) {
      let e: CacheEntry<V> | undefined
      try {
        e = l1.getSync(key)
      } catch (error) {
        return Promise.reject(error)
      }
      if (e !== undefined && this.#freshness.usable(key, e, fn)) return Promise.resolve(e.value)
    }
    return this.#reads.read(key, fn)
  }

  /** The cached entry with its metadata (no loader call), or `undefined`. */
  getEntry(key: string): Promise<CacheEntry<V> | undefined> {
    return this.#reads.entry(key)
  }

  /** True when a value is cached or recorded under `key` (no loader call). */
  async has(key: string): Promise<boolean> {
    return (await this.getEntry(key)) !== undefined
  }

  /**
   * Remaining life of the cached value in ms (grace not counted), `Infinity` when it never
   * expires, `undefined` when nothing is cached or recorded.
   */
  async getTTL(key: string): Promise<number | undefined> {
    const e = await this.getEntry(key)
    if (e === undefined) return undefined
    if (e.expiresAt === null) return Infinity
    return Math.max(0, e.expiresAt - this.#p.grace - this.#ctx.now())
  }

  /**
   * Gives the cached copies of `key` a new life of `ttl` ms (`Infinity` = until invalidated) in
   * every cache tier that holds it; true when one did. The store of record is not changed.
   */
  setTTL(key: string, ttl: number): Promise<boolean> {
    return this.#reads.setTTL(key, ttl)
  }

  /**
   * Drops cached copies (every cache tier, other instances' L1, dependents); the store of record
   * keeps its data. Give keys, or a target with patterns, tags or `all`.
   */
  invalidate(
    target: string | readonly string[] | Omit<InvalidationTarget, 'namespace'>,
  ): Promise<void> {
    const t: InvalidationTarget =
      typeof target === 'string'
        ? { namespace: this.name, keys: [target] }
        : Array.isArray(target)
          ? { namespace: this.name, keys: target as readonly string[] }
          : { ...(target as InvalidationTarget), namespace: this.name }
    return this.#ctx.invalidate(t)
  }

  /** Drops every cached entry of this namespace (the store of record keeps its data). */
  clear(): Promise<void> {
    return this.#ctx.invalidate({ namespace: this.name, all: true })
  }

  /**
   * Values for `keys`, in order. Keys missing everywhere go to `batchLoader` (or the namespace's
   * batch loader, else its loader per key) in one call; keys another read is already loading are
   * joined, not loaded twice.
   */
  getMany(keys: readonly string[], batchLoader?: BatchLoader<V>): Promise<(V | undefined)[]> {
    return this.#batch.getMany(keys, batchLoader)
  }

  /** Like uncertain (tier stack) for an invalidation of patterns or the whole namespace. */
  #uncertainWide(tier: CacheStore<V>, message: InvalidationMessage): void {
    const { tags: _t, ...wide } = message
    this.#ctx.outcomes.add(
      `${this.name}\u0000${tier.tier}\u0000${JSON.stringify(wide)}`,
      async () => {
        if (wide.all) await tier.clear()
        for (const pattern of wide.patterns ?? []) await tier.deletePattern(pattern)
        this.dropLocal(wide)
        await this.#ctx.publish(wide)
      },
    )
  }

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  /**
   * Writes `value` by the namespace's strategy and returns the version it got.
   * - write_through: the record, then every cache tier; a record failure reaches the caller and
   *   leaves the caches as they were.
   * - write_behind: the cache tiers, then the write queue; resolves once the queue has it.
   * - write_around: the record; the key is then invalidated in every cache tier.
   * Other instances drop their L1 copy through the bus; dependent namespaces are invalidated.
   * @throws {ConflictError} when `expectedVersion` does not match
   * @throws {QueueFullError} (write_behind) when the queue is full; nothing is kept
   */
  set(key: string, value: V, options: TieredSetOptions = {}): Promise<SetResult> {
    return this.#writes.set(key, value, options)
  }

  /**
   * Removes `key`: from the record (write_through, write_around), through the queue
   * (write_behind), and from every cache tier; other instances and dependents follow.
   */
  delete(key: string): Promise<boolean> {
    return this.#writes.delete(key)
  }

  /**
   * @internal the record refused the write of `key` at `version` for good (dead-lettered): the
   * caches here and in other instances must not keep serving it. A newer write stays.
   */
  rejected(key: string, version: number): Promise<void> {
    return this.#unflushed.rejected(key, version)
  }

  /** @internal the flusher persisted writes up to `version` of `key`. */
  flushed(key: string, version: number): Promise<void> | undefined {
    return this.#unflushed.flushed(key, version)
  }

  // -------------------------------------------------------------------------------------------
  // Invalidation (called by the cache)
  // -------------------------------------------------------------------------------------------

  /** @internal drops what `message` names from this instance's L1 (and negative cache). */
  dropLocal(message: InvalidationMessage, remote = false, sentAt = Number.POSITIVE_INFINITY): void {
    if (message.all || message.patterns) {
      this.#guard.removedAll()
      this.#negative.clear()
    }
    for (const key of message.keys ?? []) {
      this.#guard.removed(key)
      this.#negative.forget(key)
    }
    if (message.tags) this.#guard.removedAll()
    if (this.#unflushed.size !== 0)
      this.#unflushed.hit(message, remote ? { remote, sentAt } : { remote })
    const l1 = this.#l1sync
    if (l1 === undefined) return
    if (message.all) {
      void this.#l1?.clear().catch((error) => this.#tiers.report('memory', 'clear', error))
      return
    }
    for (const key of message.keys ?? []) l1.deleteSync(key)
    for (const pattern of message.patterns ?? []) {
      void l1
        .deletePattern(pattern)
        .catch((error) => this.#tiers.report('memory', 'deletePattern', error))
    }
  }

  /** @internal drops what `message` names from every cache tier of this instance (not the record). */
  async dropTiers(message: InvalidationMessage): Promise<void> {
    const keys = message.keys ?? []
    const wide = message.all === true || (message.patterns?.length ?? 0) > 0
    this.#guard.hold(keys)
    if (wide) this.#guard.holdAll()
    try {
      this.dropLocal(message)
      const tiers = this.#l1sync === undefined ? this.#caches : this.#caches.slice(1)
      for (const tier of tiers) {
        try {
          if (message.all) await tier.clear()
          if (keys.length > 0) await tier.deleteMany(keys)
          for (const pattern of message.patterns ?? []) await tier.deletePattern(pattern)
        } catch (error) {
          this.#tiers.report(tier.tier, 'invalidate', error)
          // the drop may run late or not at all: do it again once the tier answers
          if (wide) this.#uncertainWide(tier, message)
          else for (const key of keys) this.#tiers.uncertain(key)
        }
      }
      if (message.all && this.#l1sync) await this.#l1sync.clear()
    } finally {
      this.#guard.release(keys)
      if (wide) this.#guard.releaseAll()
    }
    // what a read copied into L1 while the lower tiers were being cleared goes too
    if (!message.all) this.dropLocal({ ...message, tags: undefined })
  }

  /** @internal the bus may have lost messages: forget everything local. */
  reset(): Promise<void> {
    return this.dropTiersLocalAll()
  }

  async dropTiersLocalAll(): Promise<void> {
    this.#guard.removedAll()
    this.#negative.clear()
    // messages may have been lost: another instance may have written or deleted any key
    if (this.#unflushed.size !== 0)
      this.#unflushed.hit({ all: true }, { remote: true, sentAt: Number.POSITIVE_INFINITY })
    if (this.#l1 !== undefined) {
      try {
        await this.#l1.clear()
      } catch (error) {
        this.#tiers.report(this.#l1.tier, 'clear', error)
      }
    }
  }
}
