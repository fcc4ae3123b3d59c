import {
  type CacheEntry,
  type CacheStore,
  ConflictError,
  hasVersionedDeletes,
  type InvalidationMessage,
  InvalidOptionError,
  measureValue,
  resolveSetOptions,
  type SetResult,
  type SyncCacheStore,
  TimeoutError,
  validateKey,
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
import { isUnknownOutcome } from './unknown-outcomes.js'

export type { NamespaceContext, NamespaceStats, NamespaceTiers } from './namespace-context.js'

/** Options of a tiered write. */
export interface TieredSetOptions {
  /** Life of the cached copies in ms (`Infinity` = until invalidated). @default the namespace's ttl, jittered */
  ttl?: number
  /** Tags for group invalidation. */
  tags?: readonly string[]
  /** Explicit version: the write applies only where no newer version is stored. */
  version?: number
  /** Compare-and-set against the version of record (`0` = absent): `ConflictError` on mismatch. */
  expectedVersion?: number
}

/**
 * Write-behind versions taken from the clock are epoch ms × 1000 (about 1.8e15 today); versions
 * below this come from loads and record rows of write-through history.
 */
const CLOCK_VERSIONS = 1e15

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
  /** Compare-and-set write-behind writes of keys the caches do not hold, one at a time per key. */
  readonly #casChains = new Map<string, Promise<unknown>>()
  #lastClockVersion = 0
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
  async set(key: string, value: V, options: TieredSetOptions = {}): Promise<SetResult> {
    this.#ctx.assertOpen()
    validateKey(key, this.name)
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', `must be an object, got ${String(options)}`)
    }
    if (this.#p.checkValues) measureValue(value) // throws SerializationError before any I/O
    const clock = this.#ctx.now()
    // validates ttl, version, expectedVersion and tags before any I/O
    const checked = resolveSetOptions({ ...options }, this.#p.ttl, clock)
    const expiresAt = this.#freshness.expiry(clock, options.ttl)
    if (options.ttl !== undefined) this.#ctx.lifeUsed(options.ttl + this.#p.grace)
    const tags = checked.tags
    if (tags.length > 0) {
      // order this write after invalidations of its tags other instances made (times in L2)
      await this.#ctx.tags
        .ensure(tags)
        .catch((error) => this.#tiers.report('tags', 'get', error, key))
    }
    const now = this.#ctx.tags.created(clock, tags) // after every invalidation of its tags seen
    this.#guard.written(key)
    this.#negative.forget(key)
    let result: SetResult
    switch (this.#p.strategy) {
      case 'write_behind':
        result = await this.#writeBehind(key, value, options, expiresAt, tags, now)
        break
      case 'write_around': {
        result = await this.#tiers.recordWrite(key, () =>
          (this.#record as RecordStore<V>).set(key, value, {
            ttl: Infinity,
            tags,
            ...this.#versionOf(options),
          }),
        )
        this.#guard.written(key)
        await this.#ctx.invalidateKey(this.name, key, true)
        return result
      }
      default:
        result = await this.#writeThrough(key, value, options, expiresAt, tags, now)
    }
    this.#guard.written(key)
    if (result.applied) await this.#ctx.invalidateKey(this.name, key, false)
    return result
  }

  /**
   * Removes `key`: from the record (write_through, write_around), through the queue
   * (write_behind), and from every cache tier; other instances and dependents follow.
   */
  async delete(key: string): Promise<boolean> {
    this.#ctx.assertOpen()
    validateKey(key, this.name)
    this.#guard.removed(key)
    this.#guard.hold([key])
    try {
      return await this.#deleteHeld(key)
    } finally {
      this.#guard.release([key])
      // what a read copied into L1 while the tiers were being cleared goes too
      this.#l1sync?.deleteSync(key)
      this.#guard.removed(key)
    }
  }

  async #deleteHeld(key: string): Promise<boolean> {
    let existed = false
    if (this.#p.strategy === 'write_behind' && this.#ctx.queue !== undefined) {
      const current = await this.#currentVersion(key, false)
      // A clock version even for a cached key: a delete is ordered after the writes before it
      // without compare-and-set in the caches, and above any version a racing write takes there.
      const version = this.#nextVersion({ ...current, inCoord: false })
      // whether the record or an unflushed write of this instance had it (a loaded value does not
      // count); when the record cannot answer, whether the caches had it
      existed = this.#unflushed.of(key)?.op === 'set'
      await this.#ctx.queue.enqueue([
        {
          namespace: this.name,
          key,
          op: 'delete',
          version,
          expiresAt: null,
          tags: [],
          enqueuedAt: this.#ctx.now(),
        },
      ])
      this.#unflushed.add(key, {
        version,
        op: 'delete',
        value: undefined,
        tags: [],
        createdAt: this.#ctx.now(),
      })
      // The queued delete is the durable one. Deleting the record now as well keeps readers that
      // miss every cache from seeing the old row until the flush; if the record is down, the
      // queue still carries the delete. A record with versioned deletes keeps a tombstone, so
      // older queued writes of the key flushed later cannot bring the row back.
      try {
        const record = this.#record
        if (record !== undefined && hasVersionedDeletes(record)) {
          if ((await record.deleteVersions([{ key, version }])) > 0) existed = true
        } else if ((await record?.delete(key)) === true) existed = true
      } catch (error) {
        this.#tiers.report(this.#record?.tier ?? 'record', 'delete', error, key)
        existed ||= current.inCoord
      }
    } else if (this.#record !== undefined) {
      const record = this.#record
      existed = await this.#tiers.recordWrite(key, () => record.delete(key))
    }
    for (const tier of this.#caches) {
      try {
        const removed =
          tier === this.#l1sync ? this.#l1sync.deleteSync(key) : await tier.delete(key)
        if (this.#record === undefined) existed ||= removed
      } catch (error) {
        this.#tiers.report(tier.tier, 'delete', error, key)
        this.#tiers.uncertain(key)
      }
    }
    await this.#ctx.invalidateKey(this.name, key, false)
    return existed
  }

  #versionOf(options: TieredSetOptions): { version?: number; expectedVersion?: number } {
    if (options.expectedVersion !== undefined) return { expectedVersion: options.expectedVersion }
    if (options.version !== undefined) return { version: options.version }
    return {}
  }

  async #writeThrough(
    key: string,
    value: V,
    options: TieredSetOptions,
    expiresAt: number | null,
    tags: readonly string[],
    now: number,
  ): Promise<SetResult> {
    const versioning = this.#versionOf(options)
    const record = this.#record
    if (record !== undefined) {
      const r = await this.#tiers.recordWrite(key, () =>
        record.set(key, value, { ttl: Infinity, tags, ...versioning }),
      )
      if (!r.applied) return r
      await this.#copyRecorded(key, value, { version: r.version, expiresAt, createdAt: now, tags })
      return r
    }
    const coord = this.#caches[this.#coord]
    if (coord === undefined)
      throw new InvalidOptionError('tiers', 'the cache has no tier to write to')
    const r =
      coord === this.#l1sync
        ? this.#l1sync.setSync(key, value, { expiresAt, createdAt: now, tags, ...versioning })
        : await this.#tiers.recordWrite(key, () =>
            coord.set(key, value, { expiresAt, createdAt: now, tags, ...versioning }),
          )
    if (!r.applied) return r
    for (let i = 0; i < this.#caches.length; i++) {
      if (i !== this.#coord)
        await this.#tiers.put(i, key, value, {
          version: r.version,
          expiresAt,
          createdAt: now,
          tags,
        })
    }
    return r
  }

  /**
   * Writes a value the record just took (at `entry.version`) into every cache tier. A tier may
   * hold a higher version that is not the record's: a loaded value, whose versions count loads
   * while the record lacks the key. Such a copy is replaced (delete, then write), and the record
   * is read once more: if it moved past this write meanwhile, the copies just written may be older
   * than another instance's and are dropped again.
   */
  async #copyRecorded(
    key: string,
    value: V,
    entry: {
      version: number
      expiresAt: number | null
      createdAt: number
      tags: readonly string[]
    },
  ): Promise<void> {
    let replaced = false
    for (let i = this.#caches.length - 1; i >= 0; i--) {
      const tier = this.#caches[i] as CacheStore<V>
      try {
        if (tier === this.#l1sync) {
          if (this.#l1sync.setSync(key, value, entry).applied) continue
          this.#l1sync.deleteSync(key)
          this.#l1sync.setSync(key, value, entry)
        } else {
          if ((await tier.set(key, value, entry)).applied) continue
          await tier.delete(key)
          await tier.set(key, value, entry)
        }
        replaced = true
      } catch (error) {
        this.#tiers.report(tier.tier, 'set', error, key)
        this.#tiers.uncertain(key)
      }
    }
    if (!replaced) return
    let current: number | undefined
    try {
      current = (await this.#record?.get(key))?.version
    } catch (error) {
      this.#tiers.report(this.#record?.tier ?? 'record', 'get', error, key)
    }
    if (current !== entry.version)
      for (const tier of this.#caches) await this.#tiers.drop(tier, key)
  }

  /**
   * The version `key` has now: from the coordinating cache tier when it holds the key (and nothing
   * newer is pending); otherwise this instance's pending writes and, when `exact`
   * (compare-and-set), the record.
   */
  async #currentVersion(
    key: string,
    exact: boolean,
  ): Promise<{ version: number; inCoord: boolean; floor: number }> {
    const coord = this.#caches[this.#coord]
    const p = this.#unflushed.of(key)
    const pending = p?.version ?? 0
    let cached: number | undefined
    if (coord !== undefined) {
      const e = coord === this.#l1sync ? this.#l1sync.getSync(key) : await coord.get(key)
      // an entry older than an unflushed write of ours was refilled from the record: not current
      // (after a delete of ours, what the caches hold was loaded since)
      if (e !== undefined && (e.version >= pending || p?.op === 'delete')) {
        if (e.version >= CLOCK_VERSIONS && e.version >= pending) {
          return { version: e.version, inCoord: true, floor: e.version }
        }
        // A version below the clock range was given by a load (compare-and-set from absent
        // starts at 1): the record may keep a tombstone above it, so the write takes a clock
        // version instead of this one + 1.
        cached = e.version
      }
    }
    // after a delete of ours the key is absent (compare-and-set expects 0), but later versions
    // must still be above the delete's
    let version = cached ?? (p?.op === 'delete' ? 0 : pending)
    if (exact && cached === undefined && this.#record !== undefined) {
      const e = await this.#record.get(key)
      if (e !== undefined && e.version > pending) version = e.version
    }
    return { version, inCoord: false, floor: Math.max(version, pending) }
  }

  /**
   * The version for a write-behind write of a key the caches do not hold. Reading the record for
   * its version would put a database round trip in every such write; a version from the clock
   * (epoch ms × 1000, plus a counter within a millisecond) is above any version the key got
   * earlier, as long as instances' clocks agree better than the time between two writes of the key.
   */
  #nextVersion(current: { version: number; inCoord: boolean; floor: number }): number {
    if (current.inCoord) return current.version + 1
    this.#lastClockVersion = Math.max(
      this.#lastClockVersion + 1,
      Math.floor(this.#ctx.now()) * 1000,
      current.floor + 1,
    )
    return this.#lastClockVersion
  }

  async #writeBehind(
    key: string,
    value: V,
    options: TieredSetOptions,
    expiresAt: number | null,
    tags: readonly string[],
    now: number,
  ): Promise<SetResult> {
    if (options.expectedVersion !== undefined) {
      // the check reads the record when the caches do not hold the key: without this, two
      // compare-and-set writes could both pass it
      return this.#oneAtATime(key, () =>
        this.#writeBehindOnce(key, value, options, expiresAt, tags, now),
      )
    }
    return this.#writeBehindOnce(key, value, options, expiresAt, tags, now)
  }

  /**
   * Runs compare-and-set writes of `key` one at a time: in this process, and across instances
   * through the lock provider when there is one.
   */
  async #oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#casChains.get(key)
    let release!: () => void
    const mine = new Promise<void>((r) => {
      release = r
    })
    const chain = (before ?? Promise.resolve()).then(() => mine)
    this.#casChains.set(key, chain)
    try {
      if (before !== undefined) await before.catch(() => undefined)
      const provider = this.#ctx.lock
      if (provider === undefined) return await fn()
      const lock = await provider.acquire(`cas:${this.name}:${key}`.slice(0, 512), {
        ttl: this.#p.lockTtl,
        waitMs: this.#p.lockWait,
      })
      if (lock === undefined) {
        throw new TimeoutError(
          this.#p.lockWait,
          `${this.name}:${key}: another instance held the compare-and-set lock for over ${this.#p.lockWait} ms`,
          { tier: 'lock', namespace: this.name, key },
        )
      }
      try {
        return await fn()
      } finally {
        await lock.release().catch((error) => this.#tiers.report('lock', 'release', error, key))
      }
    } finally {
      release()
      if (this.#casChains.get(key) === chain) this.#casChains.delete(key)
    }
  }

  async #writeBehindOnce(
    key: string,
    value: V,
    options: TieredSetOptions,
    expiresAt: number | null,
    tags: readonly string[],
    now: number,
  ): Promise<SetResult> {
    const queue = this.#ctx.queue
    if (queue === undefined)
      throw new InvalidOptionError('queue', 'write_behind needs a write queue')
    const coord = this.#caches[this.#coord]
    let version: number | undefined
    for (let attempt = 0; version === undefined; attempt++) {
      const current = await this.#currentVersion(key, options.expectedVersion !== undefined)
      if (options.expectedVersion !== undefined && options.expectedVersion !== current.version) {
        throw new ConflictError(options.expectedVersion, current.version, {
          tier: 'tiered',
          namespace: this.name,
          key,
        })
      }
      // compare-and-set checks the version seen; a key the caches do not hold still gets a clock
      // version, above a tombstone the record may keep for it
      const next = options.version ?? this.#nextVersion(current)
      if (coord === undefined) {
        version = next
        break
      }
      const setOptions =
        current.inCoord && options.version === undefined
          ? { expiresAt, createdAt: now, tags, expectedVersion: current.version }
          : { expiresAt, createdAt: now, tags, version: next }
      try {
        const r =
          coord === this.#l1sync
            ? this.#l1sync.setSync(key, value, setOptions)
            : await coord.set(key, value, setOptions)
        if (r.applied) version = r.version
        else if (options.version !== undefined) return r // an explicit older version: ignored
      } catch (error) {
        if (!(error instanceof ConflictError)) {
          // the claim may still apply: a value nobody acknowledged must not stay readable in L2
          if (coord !== this.#l1sync) this.#tiers.failed(key, error)
          throw error
        }
      }
      if (version === undefined && (attempt >= 8 || options.expectedVersion !== undefined)) {
        throw new ConflictError(current.version, -1, { tier: 'tiered', namespace: this.name, key })
      }
    }
    try {
      await queue.enqueue([
        {
          namespace: this.name,
          key,
          op: 'set',
          value,
          version,
          expiresAt: null,
          tags,
          enqueuedAt: now,
        },
      ])
    } catch (error) {
      // not acknowledged: the caches must not keep a write the record will never see (nor, when
      // the enqueue may still apply, one older than it)
      if (isUnknownOutcome(error)) this.#tiers.uncertain(key)
      else for (const tier of this.#caches) await this.#tiers.drop(tier, key)
      throw error
    }
    this.#unflushed.add(key, { version, op: 'set', value, tags, createdAt: now })
    if (version > this.#lastClockVersion) this.#lastClockVersion = version
    for (let i = 0; i < this.#caches.length; i++) {
      if (i !== this.#coord)
        await this.#tiers.put(i, key, value, { version, expiresAt, createdAt: now, tags })
    }
    return { applied: true, version }
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
