import { type CacheEntry, type CacheStore, validateKey, validateTtl } from '@actor-cache/core'
import { publishHit, publishMiss } from './events.js'
import type { LoaderRunner, Seen } from './loader-runner.js'
import type { NamespaceParts } from './namespace-context.js'
import type { Loader } from './policy.js'

/** What the walk down the cache tiers found besides a fresh copy. */
interface Walk<V> {
  /** The newest copy within grace. */
  stale: CacheEntry<V> | undefined
  /** A tier failed. */
  failed: boolean
  seen: Seen<V>
}

/**
 * A read answered by a loaded value this process holds while its fill lands (see
 * `Flights.holdRead`): no I/O, so it counts as an L1 hit, as it will be once the fill lands.
 */
export function heldHit<V>(ns: NamespaceParts<V>, key: string): void {
  const l1 = ns.tiers.l1
  if (l1 === undefined) return
  ns.stats.l1Hits++
  publishHit(ns.name, key, l1.tier, 'l1')
}

/**
 * The read path of one key past the L1 fast path: single flight, the walk down the cache tiers
 * (copying a hit into the tiers above), this instance's unflushed write, the store of record, then
 * the loader. Also the reads that never load (`getEntry`, and through it `has` and `getTTL`) and
 * `setTTL`.
 */
export class ReadPath<V> {
  /** The namespace's parts this one works with. */
  readonly #ns: NamespaceParts<V>
  readonly #loads: LoaderRunner<V>

  constructor(parts: NamespaceParts<V>, loads: LoaderRunner<V>) {
    this.#ns = parts
    this.#loads = loads
  }

  /** A read L1 could not answer: the negative cache, a read in flight, else a new one. */
  read(key: string, loader: Loader<V> | undefined): Promise<V | undefined> {
    try {
      validateKey(key, this.#ns.name)
    } catch (error) {
      return Promise.reject(error)
    }
    if (this.#ns.negative.size !== 0 && this.#ns.negative.answers(key, this.#ns.ctx.now())) {
      return Promise.resolve(undefined)
    }
    const flight = this.#ns.flights.joinable(key, loader !== undefined, this.#ns.ctx.now())
    if (flight !== undefined) {
      if (flight.freshUntil !== undefined) heldHit(this.#ns, key)
      return flight.read
    }
    const p = this.#resolve(key, loader)
    this.#ns.flights.startRead(key, p, { loaderless: loader === undefined })
    return p
  }

  /** A read that skips the cached copies: the record's value, else the loader's (see `forceLoad`). */
  forced(key: string, loader: Loader<V>): Promise<V | undefined> {
    try {
      validateKey(key, this.#ns.name)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#loads.forceLoad(key, loader)
  }

  /** The cached entry with its metadata (no loader call), or `undefined`. */
  async entry(key: string): Promise<CacheEntry<V> | undefined> {
    validateKey(key, this.#ns.name)
    const now = this.#ns.ctx.now()
    const { caches, l1, record } = this.#ns.tiers
    for (const tier of caches) {
      try {
        const e = await tier.get(key)
        if (e !== undefined && tier !== l1 && e.tags.length !== 0) {
          await this.#ns.ctx.tags.ensure(e.tags)
        }
        if (
          e !== undefined &&
          !this.#ns.unflushed.hides(key, e) &&
          this.#ns.freshness.classify(e, now) === 'fresh'
        )
          return e
      } catch (error) {
        this.#ns.tiers.report(tier.tier, 'get', error, key)
      }
    }
    const p = this.#ns.unflushed.of(key)
    let e: CacheEntry<V> | undefined
    try {
      e = await record?.get(key)
    } catch (error) {
      // as for reads: an unflushed write of ours still answers; otherwise the failure does
      if (p === undefined) throw error
      this.#ns.tiers.report(record?.tier ?? 'record', 'get', error, key)
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

  /** Gives the fresh cached copies of `key` a new life of `ttl` ms; true when a tier had one. */
  async setTTL(key: string, ttl: number): Promise<boolean> {
    validateKey(key, this.#ns.name)
    validateTtl(ttl)
    const physical = ttl === Infinity ? Infinity : ttl + this.#ns.policy.grace
    this.#ns.ctx.lifeUsed(physical)
    const now = this.#ns.ctx.now()
    const { caches, l1, l1sync } = this.#ns.tiers
    let any = false
    for (const tier of caches) {
      // an entry a tag invalidated, or past its TTL (kept only for grace), is not given new life
      const e = tier === l1sync ? l1sync.getSync(key) : await tier.get(key).catch(() => undefined)
      if (e !== undefined && tier !== l1 && e.tags.length !== 0) {
        await this.#ns.ctx.tags.ensure(e.tags).catch(() => undefined)
      }
      if (
        e === undefined ||
        this.#ns.unflushed.hides(key, e) ||
        this.#ns.freshness.classify(e, now) !== 'fresh'
      ) {
        if (e !== undefined) await this.#ns.tiers.drop(tier, key)
        continue
      }
      try {
        if (await tier.setTTL(key, physical)) any = true
      } catch (error) {
        this.#ns.tiers.report(tier.tier, 'setTTL', error, key)
        this.#ns.tiers.failed(key, error)
      }
    }
    if (any) await this.#ns.ctx.keyChanged(this.#ns.name, key)
    return any
  }

  async #resolve(key: string, loader: Loader<V> | undefined): Promise<V | undefined> {
    const token = this.#ns.guard.token
    const now = this.#ns.ctx.now()
    const walk: Walk<V> = { stale: undefined, failed: false, seen: [] }
    const hit = await this.#fromCaches(key, loader, walk, token, now)
    if (hit !== undefined) return hit.value
    const stale = walk.stale
    const record = this.#ns.tiers.record
    const unflushed = this.#ns.unflushed.of(key)
    if (unflushed !== undefined) {
      const served = await this.#ns.unflushed.serve(key, unflushed, token)
      if (served !== undefined) return served.value
      // deleted by this instance and not written since: as if the record had nothing
    } else if (record !== undefined) {
      try {
        const e = await record.get(key)
        if (e !== undefined && (e.expiresAt === null || now < e.expiresAt)) {
          this.#ns.stats.recordHits++
          publishHit(this.#ns.name, key, record.tier, 'record')
          await this.#ns.tiers.fill(key, e, token)
          return e.value
        }
      } catch (error) {
        // A record that cannot answer is not a miss: the key may be there, so neither "not found"
        // nor a loader's default may stand in for it. Stale within grace, else the failure.
        this.#ns.tiers.report(record.tier, 'get', error, key)
        if (stale !== undefined) return this.#ns.freshness.serveStale(stale, key)
        throw error
      }
    }
    if (loader === undefined) {
      if (stale !== undefined && walk.failed) return this.#ns.freshness.serveStale(stale, key)
      this.#ns.stats.misses++
      publishMiss(this.#ns.name, key)
      return undefined
    }
    return this.#loads.loadOrStale(key, loader, { stale, token, seen: walk.seen }, now)
  }

  /**
   * Walks the cache tiers top down for a fresh copy of `key`, copying one found below L1 into the
   * tiers above it; notes in `walk` what else it saw.
   */
  async #fromCaches(
    key: string,
    loader: Loader<V> | undefined,
    walk: Walk<V>,
    token: number,
    now: number,
  ): Promise<{ value: V } | undefined> {
    const { caches, l1sync } = this.#ns.tiers
    for (let i = 0; i < caches.length; i++) {
      const tier = caches[i] as CacheStore<V>
      let e: CacheEntry<V> | undefined
      try {
        e = tier === l1sync ? l1sync.getSync(key) : await tier.get(key)
        if (e !== undefined && i > 0 && e.tags.length !== 0) await this.#ns.ctx.tags.ensure(e.tags)
      } catch (error) {
        this.#ns.tiers.report(tier.tier, 'get', error, key)
        walk.failed = true
        walk.seen.push(null)
        continue
      }
      walk.seen.push(e)
      if (e === undefined || this.#ns.unflushed.hides(key, e)) continue
      const state = this.#ns.freshness.classify(e, now)
      if (state === 'fresh') {
        if (i === 0) this.#ns.stats.l1Hits++
        publishHit(this.#ns.name, key, tier.tier, this.#ns.tiers.levels[i] ?? 'l2')
        if (i !== 0) {
          this.#ns.stats.lowerHits++
          await this.#ns.tiers.copyUp(key, e, i, token)
        }
        if (loader !== undefined) this.#loads.refreshAhead(key, e, now, loader)
        return { value: e.value }
      }
      if (state === 'stale' && (walk.stale === undefined || e.version > walk.stale.version)) {
        walk.stale = e
      }
    }
    return undefined
  }
}
