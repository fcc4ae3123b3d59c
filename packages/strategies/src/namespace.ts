import {
  type CacheEntry,
  InvalidOptionError,
  type SetResult,
  type SyncCacheStore,
} from '@actor-cache/core'
import { BatchRead } from './batch-read.js'
import { hitChannel, publishHit } from './events.js'
import { FillGuard } from './fill-guard.js'
import { Flights } from './flights.js'
import { Freshness } from './freshness.js'
import type { InvalidationTarget, TagClock } from './invalidation.js'
import { LoaderRunner } from './loader-runner.js'
import { LocalInvalidation } from './local-invalidation.js'
import {
  type NamespaceContext,
  type NamespaceInternals,
  type NamespaceParts,
  type NamespaceStats,
  type NamespaceTiers,
  newStats,
} from './namespace-context.js'
import { NegativeCache } from './negative-cache.js'
import type { BatchLoader, Loader, ResolvedPolicy, ValueLoader } from './policy.js'
import { ReadPath } from './read-path.js'
import { TierStack } from './tier-stack.js'
import { UnflushedWrites } from './unflushed-writes.js'
import { WriteBehind } from './write-behind.js'
import { WriteThrough } from './write-through.js'
import { type TieredDeleteOptions, type TieredSetOptions, Writes } from './writes.js'

export type { NamespaceStats } from './namespace-context.js'
export type { TieredDeleteOptions, TieredSetOptions } from './writes.js'

/** Options of one {@link TieredNamespace.getOrSet} call. */
export interface GetOrSetOptions {
  /**
   * Skip every cached copy: read the store of record, else call the loader (joining a load of the
   * key already running), and cache the answer over the copies the tiers hold.
   * @default false
   */
  forceFresh?: boolean
}

/** What the facade delegates to. */
interface Facade<V> {
  readonly ctx: NamespaceContext
  readonly stats: NamespaceStats
  readonly l1sync: SyncCacheStore<V> | undefined
  readonly freshness: Freshness<V>
  readonly reads: ReadPath<V>
  readonly batch: BatchRead<V>
  readonly writes: Writes<V>
}

/** Builds a {@link TieredNamespace}; its constructor is private to this module. */
let wrap: <V>(name: string, policy: ResolvedPolicy<V>, parts: Facade<V>) => TieredNamespace<V>

/**
 * One namespace (entity type) of a {@link TieredCache}: reads through L1 → L2 → L3 → loader with
 * backfill, writes by the namespace's strategy. Get it from `cache.namespace(name)`.
 */
export class TieredNamespace<V = unknown> {
  /** Namespace name. */
  readonly name: string
  readonly #p: ResolvedPolicy<V>
  readonly #ctx: NamespaceContext
  readonly #stats: NamespaceStats
  // The L1 fast path reads these directly: a hit is answered without I/O or allocation.
  readonly #l1sync: SyncCacheStore<V> | undefined
  /** No grace and no refresh-ahead: an L1 copy is usable unless a tag of it was invalidated. */
  readonly #plain: boolean
  readonly #tags: TagClock
  readonly #freshness: Freshness<V>
  readonly #reads: ReadPath<V>
  readonly #batch: BatchRead<V>
  readonly #writes: Writes<V>

  static {
    wrap = (name, policy, parts) => new TieredNamespace(name, policy, parts)
  }

  private constructor(name: string, policy: ResolvedPolicy<V>, parts: Facade<V>) {
    this.name = name
    this.#p = policy
    this.#ctx = parts.ctx
    this.#stats = parts.stats
    this.#l1sync = parts.l1sync
    this.#plain = policy.grace === 0 && !policy.refreshAhead
    this.#tags = parts.ctx.tags
    this.#freshness = parts.freshness
    this.#reads = parts.reads
    this.#batch = parts.batch
    this.#writes = parts.writes
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
        this.#stats.l1Hits++
        if (hitChannel.hasSubscribers) publishHit(this.name, key, l1.tier, 'l1')
        return Promise.resolve(e.value)
      }
    }
    return this.#reads.read(key, this.#p.loader)
  }

  /**
   * Like {@link get}, with `loader` (or the namespace's) called on a miss. However many callers
   * ask for the same key at once, the loader runs once per process (and once across instances
   * when the cache has a lock provider). The loader decides how its answer is cached through its
   * context ({@link LoaderContext}: TTL, tags, or not at all).
   *
   * Resolves to `V` when `loader` never returns `undefined`. Callers of one key share one load,
   * so give the loaders of a namespace one meaning: a "not found" another loader of the key
   * answered (or the negative cache remembers) reaches every caller that shares it.
   * @throws {InvalidOptionError} when there is neither `loader` nor a namespace loader
   */
  getOrSet(key: string, loader: ValueLoader<V>, options?: GetOrSetOptions): Promise<V>
  getOrSet(key: string, loader?: Loader<V>, options?: GetOrSetOptions): Promise<V | undefined>
  getOrSet(key: string, loader?: Loader<V>, options?: GetOrSetOptions): Promise<V | undefined> {
    const fn = loader ?? this.#p.loader
    if (typeof fn !== 'function') {
      return Promise.reject(
        new InvalidOptionError(
          'loader',
          `namespace "${this.name}" has no loader; pass one to getOrSet`,
        ),
      )
    }
    if (options !== undefined) return this.#getOrSetWith(key, fn, options)
    const l1 = this.#l1sync
    if (l1 !== undefined) {
      let e: CacheEntry<V> | undefined
      try {
        e = l1.getSync(key)
      } catch (error) {
        return Promise.reject(error)
      }
      if (e !== undefined && this.#freshness.usable(key, e, fn)) {
        this.#stats.l1Hits++
        if (hitChannel.hasSubscribers) publishHit(this.name, key, l1.tier, 'l1')
        return Promise.resolve(e.value)
      }
    }
    return this.#reads.read(key, fn)
  }

  /** {@link getOrSet} with options: checked, then a forced load or the usual read. */
  #getOrSetWith(key: string, loader: Loader<V>, options: GetOrSetOptions): Promise<V | undefined> {
    if (typeof options !== 'object' || options === null) {
      return Promise.reject(
        new InvalidOptionError('options', `must be an object, got ${String(options)}`),
      )
    }
    const { forceFresh } = options
    if (forceFresh !== undefined && typeof forceFresh !== 'boolean') {
      return Promise.reject(
        new InvalidOptionError('forceFresh', `must be a boolean, got ${String(forceFresh)}`),
      )
    }
    if (forceFresh === true) return this.#reads.forced(key, loader)
    return this.getOrSet(key, loader)
  }

  /**
   * The entry under `key` with its metadata (version, expiry, tags), or `undefined`: read like
   * {@link get} (a copy from a lower tier or the record is kept in L1 for the next read), without
   * calling a loader.
   */
  async getEntry(key: string): Promise<CacheEntry<V> | undefined> {
    const l1 = this.#l1sync
    if (l1 === undefined) return this.#reads.entry(key)
    const e = l1.getSync(key)
    if (e !== undefined && this.#freshness.usable(key, e, undefined)) {
      this.#stats.l1Hits++
      if (hitChannel.hasSubscribers) publishHit(this.name, key, l1.tier, 'l1')
      return e
    }
    await this.#reads.read(key, undefined) // copies what a lower tier or the record has into L1
    const filled = l1.getSync(key)
    if (filled !== undefined && this.#freshness.usable(key, filled, undefined)) return filled
    return this.#reads.entry(key)
  }

  /** True when a value is cached or recorded under `key` (no loader call, nothing copied). */
  async has(key: string): Promise<boolean> {
    return (await this.#reads.entry(key)) !== undefined
  }

  /**
   * Remaining life of the cached value in ms (grace not counted), `Infinity` when it never
   * expires, `undefined` when nothing is cached or recorded.
   */
  async getTTL(key: string): Promise<number | undefined> {
    const e = await this.#reads.entry(key)
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
   * Values for `keys`, in order. Keys missing everywhere go to `batchLoader` (or the namespace's
   * batch loader, else its loader per key) in one call; keys another read is already loading are
   * joined, not loaded twice.
   */
  getMany(keys: readonly string[], batchLoader?: BatchLoader<V>): Promise<(V | undefined)[]> {
    return this.#batch.getMany(keys, batchLoader)
  }

  // -------------------------------------------------------------------------------------------
  // Writes and invalidations
  // -------------------------------------------------------------------------------------------

  /**
   * Writes `value` by the namespace's strategy and returns the version it got. `options` may be
   * a TTL in ms alone (`set(key, value, 60_000)`), as with every store.
   * - write_through: the record, then every cache tier; a record failure reaches the caller and
   *   leaves the caches as they were.
   * - write_behind: the cache tiers, then the write queue; resolves once the queue has it.
   * - write_around: the record; the key is then invalidated in every cache tier.
   * Other instances drop their L1 copy through the bus; dependent namespaces are invalidated.
   * @throws {ConflictError} when `expectedVersion` does not match
   * @throws {QueueFullError} (write_behind) when the queue is full; nothing is kept
   */
  set(key: string, value: V, options: TieredSetOptions | number = {}): Promise<SetResult> {
    return this.#writes.set(key, value, typeof options === 'number' ? { ttl: options } : options)
  }

  /**
   * Removes `key`: from the record (write_through, write_around), through the queue
   * (write_behind), and from every cache tier; other instances and dependents follow.
   */
  delete(key: string, options?: TieredDeleteOptions): Promise<boolean> {
    return this.#writes.delete(key, options)
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
}

/**
 * Sets up namespace `name`: its mechanisms, wired together, behind the public
 * {@link TieredNamespace}, and the {@link NamespaceInternals} the cache keeps.
 */
export function createNamespace<V>(
  name: string,
  policy: ResolvedPolicy<V>,
  tiers: NamespaceTiers<V>,
  ctx: NamespaceContext,
): { namespace: TieredNamespace<V>; internals: NamespaceInternals } {
  const stats = newStats()
  const flights = new Flights<V>()
  const guard = new FillGuard(flights)
  // the fast path's check starts refresh-ahead through the loader runner, built below (the check
  // only runs on reads, once everything is wired)
  const freshness = new Freshness(name, policy, ctx, stats, (key, e, now, loader) =>
    loads.refreshAhead(key, e, now, loader),
  )
  const stack = new TierStack(name, policy, tiers, { ctx, guard, freshness, stats })
  const unflushed = new UnflushedWrites(stack, ctx.now, stats)
  const parts: NamespaceParts<V> = {
    name,
    policy,
    ctx,
    stats,
    tiers: stack,
    guard,
    flights,
    freshness,
    negative: new NegativeCache(stats),
    unflushed,
  }
  const loads = new LoaderRunner(parts)
  const local = new LocalInvalidation(parts)
  const writes = new Writes(parts, {
    through: new WriteThrough(parts),
    behind: new WriteBehind(parts),
  })
  const namespace = wrap(name, policy, {
    ctx,
    stats,
    l1sync: stack.l1sync,
    freshness,
    reads: new ReadPath(parts, loads),
    batch: new BatchRead(parts, loads),
    writes,
  })
  ctx.lifeUsed(policy.ttl + policy.grace)
  return {
    namespace,
    internals: {
      flushed: (key, version) => unflushed.flushed(key, version),
      rejected: (key, version) => unflushed.rejected(key, version),
      dropLocal: (message) => local.dropLocal(message),
      dropRemote: (message, sentAt) => local.dropRemote(message, sentAt),
      dropTiers: (message) => local.dropTiers(message),
      reset: () => local.reset(),
    },
  }
}
