import {
  type CacheEntry,
  type CacheStore,
  ConflictError,
  hasVersionedDeletes,
  type InvalidationMessage,
  InvalidOptionError,
  type LockProvider,
  measureValue,
  resolveSetOptions,
  type SetResult,
  type SyncCacheStore,
  TimeoutError,
  validateKey,
  validateTtl,
} from '@actor-cache/core'
import { FillGuard } from './fill-guard.js'
import { Flights } from './flights.js'
import { Freshness } from './freshness.js'
import type { InvalidationTarget } from './invalidation.js'
import {
  type NamespaceContext,
  type NamespaceStats,
  type NamespaceTiers,
  newStats,
} from './namespace-context.js'
import { NegativeCache } from './negative-cache.js'
import type { BatchLoader, Loader, RecordStore, ResolvedPolicy } from './policy.js'
import { TierStack } from './tier-stack.js'
import { UnflushedWrites } from './unflushed-writes.js'
import { isUnknownOutcome } from './unknown-outcomes.js'
import { BoundedMap, TIMEOUT, within } from './util.js'

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

interface Backoff {
  until: number
  failures: number
}

const NOT_SEEN = 0

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
  readonly #backoff = new BoundedMap<string, Backoff>(10_000)
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
      this.#maybeRefresh(key, e, now, loader),
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
    return this.#read(key, this.#p.loader)
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
    return this.#read(key, fn)
  }

  /** The cached entry with its metadata (no loader call), or `undefined`. */
  async getEntry(key: string): Promise<CacheEntry<V> | undefined> {
    validateKey(key, this.name)
    const now = this.#ctx.now()
    for (const tier of this.#caches) {
      try {
        const e = await tier.get(key)
        if (e !== undefined && tier !== this.#l1 && e.tags.length !== 0) {
          await this.#ctx.tags.ensure(e.tags)
        }
        if (
          e !== undefined &&
          !this.#unflushed.hides(key, e) &&
          this.#freshness.classify(e, now) === 'fresh'
        )
          return e
      } catch (error) {
        this.#tiers.report(tier.tier, 'get', error, key)
      }
    }
    const p = this.#unflushed.of(key)
    let e: CacheEntry<V> | undefined
    try {
      e = await this.#record?.get(key)
    } catch (error) {
      // as for reads: an unflushed write of ours still answers; otherwise the failure does
      if (p === undefined) throw error
      this.#tiers.report(this.#record?.tier ?? 'record', 'get', error, key)
    }
    if (p !== undefined && (e === undefined || e.version < p.version)) {
      // this instance's write the record does not have yet
      if (p.op === 'delete') return undefined
      return Object.freeze({
        value: p.value as V,
        version: p.version,
        createdAt: p.createdAt,
        expiresAt: null,
        tags: p.tags,
      })
    }
    if (e !== undefined && (e.expiresAt === null || now < e.expiresAt)) return e
    return undefined
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
  async setTTL(key: string, ttl: number): Promise<boolean> {
    validateKey(key, this.name)
    validateTtl(ttl)
    const physical = ttl === Infinity ? Infinity : ttl + this.#p.grace
    this.#ctx.lifeUsed(physical)
    const now = this.#ctx.now()
    let any = false
    for (const tier of this.#caches) {
      // an entry a tag invalidated, or past its TTL (kept only for grace), is not given new life
      const e =
        tier === this.#l1sync
          ? this.#l1sync.getSync(key)
          : await tier.get(key).catch(() => undefined)
      if (e !== undefined && tier !== this.#l1 && e.tags.length !== 0) {
        await this.#ctx.tags.ensure(e.tags).catch(() => undefined)
      }
      if (
        e === undefined ||
        this.#unflushed.hides(key, e) ||
        this.#freshness.classify(e, now) !== 'fresh'
      ) {
        if (e !== undefined) await this.#tiers.drop(tier, key)
        continue
      }
      try {
        if (await tier.setTTL(key, physical)) any = true
      } catch (error) {
        this.#tiers.report(tier.tier, 'setTTL', error, key)
        this.#tiers.failed(key, error)
      }
    }
    if (any) await this.#ctx.invalidateKey(this.name, key, false)
    return any
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
  async getMany(keys: readonly string[], batchLoader?: BatchLoader<V>): Promise<(V | undefined)[]> {
    if (!Array.isArray(keys)) throw new InvalidOptionError('keys', 'must be an array of keys')
    for (const key of keys) validateKey(key, this.name)
    if (batchLoader !== undefined && typeof batchLoader !== 'function') {
      throw new InvalidOptionError('batchLoader', `must be a function, got ${typeof batchLoader}`)
    }
    const out: (V | undefined)[] = new Array(keys.length)
    const waiting = new Map<string, number[]>()
    const l1 = this.#l1sync
    const now = this.#ctx.now()
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string
      const e = l1?.getSync(key)
      if (e !== undefined && this.#freshness.usable(key, e, this.#p.loader)) {
        out[i] = e.value
        this.#stats.l1Hits++
        continue
      }
      if (this.#negative.answers(key, now)) continue
      const at = waiting.get(key)
      if (at === undefined) waiting.set(key, [i])
      else at.push(i)
    }
    if (waiting.size === 0) return out
    const joined: Promise<void>[] = []
    const fresh: string[] = []
    const loads = (batchLoader ?? this.#p.batchLoader ?? this.#p.loader) !== undefined
    for (const key of waiting.keys()) {
      const flight = this.#flights.joinable(key, loads)
      if (flight === undefined) fresh.push(key)
      else joined.push(flight.then((v) => this.#place(out, waiting.get(key) as number[], v)))
    }
    if (fresh.length > 0) {
      const batch = this.#readMany(fresh, batchLoader ?? this.#p.batchLoader)
      for (let j = 0; j < fresh.length; j++) {
        const key = fresh[j] as string
        const p = batch.then((values) => values[j])
        this.#flights.startRead(key, p, { loaderless: !loads })
        joined.push(p.then((v) => this.#place(out, waiting.get(key) as number[], v)))
      }
    }
    await Promise.all(joined)
    return out
  }

  #place(out: (V | undefined)[], at: number[], value: V | undefined): void {
    for (const i of at) out[i] = value
  }

  #read(key: string, loader: Loader<V> | undefined): Promise<V | undefined> {
    try {
      validateKey(key, this.name)
    } catch (error) {
      return Promise.reject(error)
    }
    if (this.#negative.size !== 0 && this.#negative.answers(key, this.#ctx.now())) {
      return Promise.resolve(undefined)
    }
    const flight = this.#flights.joinable(key, loader !== undefined)
    if (flight !== undefined) return flight
    const p = this.#resolve(key, loader)
    this.#flights.startRead(key, p, { loaderless: loader === undefined })
    return p
  }

  #maybeRefresh(key: string, e: CacheEntry<V>, now: number, loader: Loader<V>): void {
    if (!this.#freshness.refreshDue(e, now) || this.#flights.busy(key)) return
    this.#stats.refreshes++
    const token = this.#guard.token
    this.#runLoader(
      key,
      loader,
      undefined,
      token,
      true,
      this.#caches.map(() => e),
    ).catch((error) => this.#tiers.report('loader', 'refresh', error, key))
  }

  async #resolve(key: string, loader: Loader<V> | undefined): Promise<V | undefined> {
    const token = this.#guard.token
    const now = this.#ctx.now()
    let stale: CacheEntry<V> | undefined
    let failed = false
    const seen: (CacheEntry<V> | undefined | null)[] = []
    for (let i = 0; i < this.#caches.length; i++) {
      const tier = this.#caches[i] as CacheStore<V>
      let e: CacheEntry<V> | undefined
      try {
        e = tier === this.#l1sync ? this.#l1sync.getSync(key) : await tier.get(key)
        if (e !== undefined && i > 0 && e.tags.length !== 0) await this.#ctx.tags.ensure(e.tags)
      } catch (error) {
        this.#tiers.report(tier.tier, 'get', error, key)
        failed = true
        seen.push(null)
        continue
      }
      seen.push(e)
      if (e === undefined || this.#unflushed.hides(key, e)) continue
      const state = this.#freshness.classify(e, now)
      if (state === 'fresh') {
        if (i === 0) this.#stats.l1Hits++
        else {
          this.#stats.lowerHits++
          await this.#tiers.copyUp(key, e, i, token)
        }
        if (loader !== undefined) this.#maybeRefresh(key, e, now, loader)
        return e.value
      }
      if (state === 'stale' && (stale === undefined || e.version > stale.version)) stale = e
    }
    const unflushed = this.#unflushed.of(key)
    if (unflushed !== undefined) {
      const served = await this.#unflushed.serve(key, unflushed, token)
      if (served !== undefined) return served.value
      // deleted by this instance and not written since: as if the record had nothing
    } else if (this.#record !== undefined) {
      try {
        const e = await this.#record.get(key)
        if (e !== undefined && (e.expiresAt === null || now < e.expiresAt)) {
          this.#stats.recordHits++
          await this.#tiers.fill(key, e, token)
          return e.value
        }
      } catch (error) {
        // A record that cannot answer is not a miss: the key may be there, so neither "not found"
        // nor a loader's default may stand in for it. Stale within grace, else the failure.
        this.#tiers.report(this.#record.tier, 'get', error, key)
        if (stale !== undefined) return this.#freshness.serveStale(stale)
        throw error
      }
    }
    if (loader === undefined) {
      if (stale !== undefined && failed) return this.#freshness.serveStale(stale)
      this.#stats.misses++
      return undefined
    }
    if (stale !== undefined) {
      const b = this.#backoff.get(key)
      if (b !== undefined && b.until > now) return this.#freshness.serveStale(stale)
    }
    try {
      const work = this.#runLoader(key, loader, stale, token, false, seen)
      if (stale !== undefined && this.#p.softTimeout !== undefined) {
        const r = await within(work, this.#p.softTimeout)
        if (r === TIMEOUT) {
          work.catch((error) => this.#tiers.report('loader', 'load', error, key))
          return this.#freshness.serveStale(stale)
        }
        return r
      }
      return await work
    } catch (error) {
      if (stale === undefined) throw error
      this.#tiers.report('loader', 'load', error, key)
      const b = this.#backoff.get(key)
      const failures = (b?.failures ?? 0) + 1
      this.#backoff.set(key, {
        failures,
        until: now + this.#p.failureBackoff * 2 ** Math.min(failures - 1, 4),
      })
      return this.#freshness.serveStale(stale)
    }
  }

  /** One loader run per key at a time, whatever the number of callers (and soft timeouts). */
  #runLoader(
    key: string,
    loader: Loader<V>,
    stale: CacheEntry<V> | undefined,
    token: number,
    refresh: boolean,
    seen?: (CacheEntry<V> | undefined | null)[],
  ): Promise<V | undefined> {
    const start = (): Promise<V | undefined> => this.#load(key, loader, stale, token, refresh, seen)
    return refresh ? this.#flights.refresh(key, start) : this.#flights.load(key, start)
  }

  async #load(
    key: string,
    loader: Loader<V>,
    stale: CacheEntry<V> | undefined,
    token: number,
    refresh: boolean,
    seen: (CacheEntry<V> | undefined | null)[] | undefined,
  ): Promise<V | undefined> {
    const lockProvider = this.#ctx.lock
    const shared =
      this.#record !== undefined || this.#caches.length > (this.#l1 === undefined ? 0 : 1)
    let lock: Awaited<ReturnType<LockProvider['acquire']>>
    if (lockProvider !== undefined && shared) {
      try {
        lock = await lockProvider.acquire(`load:${this.name}:${key}`.slice(0, 512), {
          ttl: this.#p.lockTtl,
          waitMs: refresh ? 0 : this.#p.lockWait,
        })
      } catch (error) {
        this.#tiers.report('lock', 'acquire', error, key)
      }
      if (lock === undefined && refresh) return undefined // another instance refreshes it
      if (!refresh) {
        // another instance may have loaded it while we waited
        let found: CacheEntry<V> | undefined
        try {
          found = await this.#sharedFresh(key, token)
        } catch (error) {
          await lock?.release().catch((e) => this.#tiers.report('lock', 'release', e, key))
          throw error
        }
        if (found !== undefined) {
          await lock?.release().catch((error) => this.#tiers.report('lock', 'release', error, key))
          return found.value
        }
      }
    }
    const unflushed = this.#unflushed.of(key)
    if (unflushed !== undefined) {
      // the record may not have this instance's latest write yet
      const served = await this.#unflushed.serve(key, unflushed, token)
      if (served !== undefined) {
        await lock?.release().catch((error) => this.#tiers.report('lock', 'release', error, key))
        return served.value
      }
      // deleted and not written since: the loader decides, as for a key the record lacks
    } else if (refresh && this.#record !== undefined) {
      // the record is the source: refreshing means copying its current value into the caches
      try {
        const e = await this.#record.get(key)
        if (e !== undefined) {
          await this.#tiers.fill(key, e, token)
          return e.value
        }
      } finally {
        await lock?.release().catch((error) => this.#tiers.report('lock', 'release', error, key))
      }
      lock = undefined
    }
    try {
      this.#stats.loads++
      const value = await this.#bounded('loader', key, (signal) =>
        loader(key, { signal, stale: stale?.value }),
      )
      if (value === undefined) {
        this.#backoff.delete(key)
        this.#stats.misses++
        if (this.#p.negativeTtl > 0 && this.#guard.unchanged(key, token)) {
          this.#negative.remember(key, this.#ctx.now() + this.#p.negativeTtl)
        }
        return undefined
      }
      this.#backoff.delete(key)
      await this.#storeLoaded(key, value, token, seen)
      return value
    } finally {
      await lock?.release().catch((error) => this.#tiers.report('lock', 'release', error, key))
    }
  }

  /**
   * Calls a loader under the hard timeout: past it, the loader's signal is aborted and the call
   * fails with `TimeoutError` (its late answer is ignored).
   */
  async #bounded<R>(
    what: string,
    key: string | undefined,
    fn: (signal: AbortSignal) => R | Promise<R>,
  ): Promise<R> {
    const controller = new AbortController()
    const call = Promise.resolve().then(() => fn(controller.signal))
    const limit = this.#p.hardTimeout
    if (limit === undefined) return call
    const answer = await within(call, limit)
    if (answer !== TIMEOUT) return answer
    controller.abort()
    call.catch(() => {})
    throw new TimeoutError(limit, `${what} did not answer within ${limit} ms`, {
      tier: 'loader',
      namespace: this.name,
      ...(key === undefined ? {} : { key }),
    })
  }

  /** A fresh entry in a shared tier (L2, L3, record), copied into L1. */
  async #sharedFresh(key: string, token: number): Promise<CacheEntry<V> | undefined> {
    const now = this.#ctx.now()
    const seen: (CacheEntry<V> | undefined | null)[] = [this.#l1sync?.getSync(key)]
    for (let i = this.#l1 === undefined ? 0 : 1; i < this.#caches.length; i++) {
      const tier = this.#caches[i] as CacheStore<V>
      try {
        const e = await tier.get(key)
        seen[i] = e
        if (e !== undefined && e.tags.length !== 0) await this.#ctx.tags.ensure(e.tags)
        if (
          e !== undefined &&
          !this.#unflushed.hides(key, e) &&
          this.#freshness.classify(e, now) === 'fresh'
        ) {
          await this.#tiers.copyUp(key, e, i, token)
          return e
        }
      } catch (error) {
        seen[i] = null
        this.#tiers.report(tier.tier, 'get', error, key)
      }
    }
    if (this.#unflushed.of(key) !== undefined) return undefined // #load serves it
    if (this.#record !== undefined) {
      try {
        const e = await this.#record.get(key)
        if (e !== undefined && (e.expiresAt === null || now < e.expiresAt)) {
          await this.#tiers.fill(key, e, token)
          return e
        }
      } catch (error) {
        // the loader must not run for a key the record may hold
        this.#tiers.report(this.#record.tier, 'get', error, key)
        throw error
      }
    }
    return undefined
  }

  /**
   * Caches a loaded value (never in the store of record: what a loader returns is derived or
   * external data that invalidations must be able to drop). The coordinating cache tier (L2, else
   * L1) stores it only if its version is still the one seen during the read (compare-and-set), so a
   * write or invalidation that happened meanwhile wins; the other tiers take that version.
   */
  async #storeLoaded(
    key: string,
    value: V,
    token: number,
    seen: (CacheEntry<V> | undefined | null)[] | undefined,
  ): Promise<void> {
    if (!this.#guard.unchanged(key, token)) return
    const clock = this.#ctx.now()
    const expiresAt = this.#freshness.expiry(clock, undefined)
    const now = this.#ctx.tags.created(clock)
    const known = seen ?? []
    // The shared tier orders versions; when it failed during the read, keep the value in this
    // instance's L1 only (compare-and-set there), so an outage does not mean a load per read.
    const c = known[this.#coord] === null && this.#coord > 0 ? 0 : this.#coord
    const tier = this.#caches[c]
    const observed = known[c]
    if (tier === undefined || observed === null) return
    let version: number
    try {
      const options = { expiresAt, createdAt: now, expectedVersion: observed?.version ?? NOT_SEEN }
      const r =
        tier === this.#l1sync
          ? this.#l1sync.setSync(key, value, options)
          : await tier.set(key, value, options)
      version = r.version
    } catch (error) {
      if (!(error instanceof ConflictError)) {
        this.#tiers.report(tier.tier, 'set', error, key)
        if (tier !== this.#l1sync) this.#tiers.failed(key, error)
      }
      return
    }
    if (this.#guard.removedSince(key, token)) {
      // a delete or invalidation (which leaves no newer version) came while this was on the wire
      await this.#tiers.takeBack(tier, key, version)
      return
    }
    if (!this.#guard.unchanged(key, token)) return // a write came meanwhile: its newer version stands
    if (c !== this.#coord) return
    for (let i = 0; i < this.#caches.length; i++) {
      if (i === this.#coord) continue
      if (!this.#guard.unchanged(key, token)) return
      await this.#tiers.put(i, key, value, { version, expiresAt, createdAt: now, tags: [] }, token)
    }
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

  async #readMany(
    keys: string[],
    batchLoader: BatchLoader<V> | undefined,
  ): Promise<(V | undefined)[]> {
    const token = this.#guard.token
    const now = this.#ctx.now()
    const out: (V | undefined)[] = new Array(keys.length)
    const stale: (CacheEntry<V> | undefined)[] = new Array(keys.length)
    // what each tier held for each key, for the compare-and-set of loaded values
    const seen: (CacheEntry<V> | undefined | null)[][] = keys.map(() => [])
    let rest = keys.map((_, i) => i)
    let failed = false
    for (let t = 0; t < this.#caches.length && rest.length > 0; t++) {
      const tier = this.#caches[t] as CacheStore<V>
      let entries: (CacheEntry<V> | undefined)[]
      try {
        // L1 was looked at synchronously already; look again (no I/O) for what it holds now
        entries =
          tier === this.#l1sync
            ? rest.map((i) => this.#l1sync?.getSync(keys[i] as string))
            : await tier.getMany(rest.map((i) => keys[i] as string))
        const tags = new Set<string>()
        for (const e of entries) for (const tag of e?.tags ?? []) tags.add(tag)
        if (tags.size > 0 && t > 0) await this.#ctx.tags.ensure([...tags])
      } catch (error) {
        this.#tiers.report(tier.tier, 'getMany', error)
        failed = true
        for (const i of rest) (seen[i] as unknown[])[t] = null
        continue
      }
      const next: number[] = []
      for (let j = 0; j < rest.length; j++) {
        const i = rest[j] as number
        let e = entries[j]
        ;(seen[i] as unknown[])[t] = e
        if (e !== undefined && this.#unflushed.hides(keys[i] as string, e)) e = undefined
        const state = e === undefined ? 'dead' : this.#freshness.classify(e, now)
        if (e !== undefined && state === 'fresh') {
          out[i] = e.value
          if (t === 0) this.#stats.l1Hits++
          else {
            this.#stats.lowerHits++
            await this.#tiers.copyUp(keys[i] as string, e, t, token)
          }
          continue
        }
        if (
          e !== undefined &&
          state === 'stale' &&
          (stale[i] === undefined || e.version > (stale[i] as CacheEntry<V>).version)
        )
          stale[i] = e
        next.push(i)
      }
      rest = next
    }
    // keys this instance deleted and has not flushed yet skip the record (the loader decides)
    const deleted: number[] = []
    if (this.#unflushed.size !== 0 && rest.length > 0) {
      const next: number[] = []
      for (const i of rest) {
        const unflushed = this.#unflushed.of(keys[i] as string)
        if (unflushed === undefined) next.push(i)
        else {
          const served = await this.#unflushed.serve(keys[i] as string, unflushed, token)
          if (served !== undefined) out[i] = served.value
          else deleted.push(i)
        }
      }
      rest = next
    }
    if (this.#record !== undefined && rest.length > 0) {
      try {
        const entries = await this.#record.getMany(rest.map((i) => keys[i] as string))
        const next: number[] = []
        for (let j = 0; j < rest.length; j++) {
          const i = rest[j] as number
          const e = entries[j]
          if (e !== undefined && (e.expiresAt === null || now < e.expiresAt)) {
            out[i] = e.value
            this.#stats.recordHits++
            await this.#tiers.fill(keys[i] as string, e, token)
          } else next.push(i)
        }
        rest = next
      } catch (error) {
        // as for get: keys the record may hold get a stale value within grace, else the failure
        this.#tiers.report(this.#record.tier, 'getMany', error)
        if (!rest.every((i) => stale[i] !== undefined)) throw error
        for (const i of rest) out[i] = this.#freshness.serveStale(stale[i] as CacheEntry<V>)
        rest = []
      }
    }
    if (deleted.length > 0) rest = rest.concat(deleted)
    if (rest.length === 0) return out
    const loader = this.#p.loader
    if (batchLoader === undefined && loader === undefined) {
      for (const i of rest) {
        if (failed && stale[i] !== undefined)
          out[i] = this.#freshness.serveStale(stale[i] as CacheEntry<V>)
        else this.#stats.misses++
      }
      return out
    }
    const missing = rest.map((i) => keys[i] as string)
    let loaded: (V | undefined)[]
    try {
      if (batchLoader !== undefined) {
        this.#stats.loads++
        const r = await this.#bounded('batch loader', undefined, (signal) =>
          batchLoader(missing, { signal }),
        )
        loaded =
          r instanceof Map
            ? missing.map((k) => r.get(k))
            : Array.from(r as readonly (V | undefined)[])
        if (loaded.length !== missing.length) {
          throw new InvalidOptionError(
            'batchLoader',
            `returned ${loaded.length} values for ${missing.length} keys`,
          )
        }
      } else {
        loaded = await Promise.all(
          rest.map((i) =>
            this.#runLoader(
              keys[i] as string,
              loader as Loader<V>,
              stale[i],
              token,
              false,
              seen[i],
            ),
          ),
        )
        for (let j = 0; j < rest.length; j++) out[rest[j] as number] = loaded[j]
        return out
      }
    } catch (error) {
      if (rest.every((i) => stale[i] !== undefined)) {
        this.#tiers.report('loader', 'loadMany', error)
        for (const i of rest) out[i] = this.#freshness.serveStale(stale[i] as CacheEntry<V>)
        return out
      }
      throw error
    }
    for (let j = 0; j < rest.length; j++) {
      const i = rest[j] as number
      const key = keys[i] as string
      const value = loaded[j]
      out[i] = value
      if (value === undefined) {
        this.#stats.misses++
        if (this.#p.negativeTtl > 0 && this.#guard.unchanged(key, token))
          this.#negative.remember(key, this.#ctx.now() + this.#p.negativeTtl)
      }
    }
    await Promise.all(
      rest.map((i, j) =>
        loaded[j] === undefined
          ? undefined
          : this.#storeLoaded(keys[i] as string, loaded[j] as V, token, seen[i]),
      ),
    )
    return out
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
