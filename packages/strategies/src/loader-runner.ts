import { type CacheEntry, type CacheStore, type Lock, TimeoutError } from '@actor-cache/core'
import { type Abortable, type Caching, DEFAULT_CACHING, LoadContext } from './cache-directives.js'
import { loadWatched, publishLoad, publishMiss, publishRefresh } from './events.js'
import type { NamespaceParts } from './namespace-context.js'
import type { Loader } from './policy.js'
import { storeLoaded } from './store-loaded.js'
import { BoundedMap, TIMEOUT, within } from './util.js'

/**
 * What each cache tier held for a key during a read, by index in the tier stack (`null`: the tier
 * failed): the compare-and-set of a loaded value expects what was seen.
 */
export type Seen<V> = (CacheEntry<V> | undefined | null)[]

/** What a read hands to its load. */
export interface LoadStart<V> {
  /** A copy within grace, served when the loader fails or is slow. */
  readonly stale: CacheEntry<V> | undefined
  /** The fill guard's token when the read began. */
  readonly token: number
  readonly seen: Seen<V> | undefined
}

/**
 * One run of a loader: for a read (`load`), a refresh-ahead in the background (`refresh`), or a
 * read that asked for a fresh value (`force`: no cached copy, not even another instance's).
 */
interface LoadJob<V> extends LoadStart<V> {
  readonly mode: 'load' | 'refresh' | 'force'
  readonly key: string
  readonly loader: Loader<V>
}

interface Backoff {
  until: number
  failures: number
}

/**
 * Runs loaders: once per key at a time in this process (see {@link Flights}) and, with a lock
 * provider and tiers other instances share, once across instances (the others wait for the
 * holder, then find its value in the shared tiers). Bounds them by the hard timeout and, with a
 * stale value at hand, the soft one; after a failure with stale served, backs off. Stores what
 * they return in the caches (never in the record) with compare-and-set, remembers "not found" in
 * the negative cache, and refreshes copies ahead of their expiry.
 */
export class LoaderRunner<V> {
  /** The namespace's parts this one works with. */
  readonly #ns: NamespaceParts<V>
  readonly #backoff = new BoundedMap<string, Backoff>(10_000)

  constructor(parts: NamespaceParts<V>) {
    this.#ns = parts
  }

  /** The load of `key` for a read (joining one in flight). */
  load(key: string, loader: Loader<V>, from: LoadStart<V>): Promise<V | undefined> {
    return this.#ns.flights.load(key, () => this.#run({ ...from, mode: 'load', key, loader }))
  }

  /**
   * A read's load of `key` with, maybe, a `stale` copy at hand: that copy is served during the
   * failure backoff, past the soft timeout (the load goes on) and when the loader fails.
   */
  async loadOrStale(
    key: string,
    loader: Loader<V>,
    from: LoadStart<V>,
    now: number,
  ): Promise<V | undefined> {
    const stale = from.stale
    if (stale !== undefined) {
      const b = this.#backoff.get(key)
      if (b !== undefined && b.until > now) return this.#ns.freshness.serveStale(stale, key)
    }
    try {
      const work = this.load(key, loader, from)
      if (stale !== undefined && this.#ns.policy.softTimeout !== undefined) {
        const r = await within(work, this.#ns.policy.softTimeout)
        if (r === TIMEOUT) {
          work.catch((error) => this.#ns.tiers.report('loader', 'load', error, key))
          return this.#ns.freshness.serveStale(stale, key)
        }
        return r
      }
      return await work
    } catch (error) {
      if (stale === undefined) throw error
      this.#ns.tiers.report('loader', 'load', error, key)
      const b = this.#backoff.get(key)
      const failures = (b?.failures ?? 0) + 1
      this.#backoff.set(key, {
        failures,
        until: now + this.#ns.policy.failureBackoff * 2 ** Math.min(failures - 1, 4),
      })
      return this.#ns.freshness.serveStale(stale, key)
    }
  }

  /**
   * A fresh value of `key` for a read that asked for one: the store of record's, else the loader's
   * (joining a load of the key in flight), cached over whatever copies the tiers hold.
   */
  async forceLoad(key: string, loader: Loader<V>): Promise<V | undefined> {
    const token = this.#ns.guard.token
    const seen = await this.#ns.tiers.versions(key)
    return this.#ns.flights.load(key, () =>
      this.#run({ mode: 'force', key, loader, stale: undefined, token, seen }),
    )
  }

  /** Refreshes `key` in the background when its fresh copy `e` is near its expiry. */
  refreshAhead(key: string, e: CacheEntry<V>, now: number, loader: Loader<V>): void {
    if (!this.#ns.freshness.refreshDue(e, now) || this.#ns.flights.busy(key)) return
    this.#ns.stats.refreshes++
    publishRefresh(this.#ns.name, key)
    const job: LoadJob<V> = {
      mode: 'refresh',
      key,
      loader,
      stale: undefined,
      token: this.#ns.guard.token,
      seen: this.#ns.tiers.caches.map(() => e),
    }
    this.#ns.flights
      .refresh(key, () => this.#run(job))
      .catch((error) => this.#ns.tiers.report('loader', 'refresh', error, key))
  }

  /**
   * A loader found nothing for `key`: counted, and remembered if nothing changed the key since
   * (and the loader did not ask for its answer not to be cached).
   */
  missed(key: string, token: number, caching: Caching = DEFAULT_CACHING): void {
    this.#ns.stats.misses++
    publishMiss(this.#ns.name, key)
    if (caching.skip) return
    if (this.#ns.policy.negativeTtl > 0 && this.#ns.guard.unchanged(key, token)) {
      this.#ns.negative.remember(key, this.#ns.ctx.now() + this.#ns.policy.negativeTtl)
    }
  }

  /**
   * Calls a loader under the hard timeout: past it, the loader's signal is aborted and the call
   * fails with `TimeoutError` (its late answer is ignored).
   */
  async bounded<R>(
    what: string,
    key: string | undefined,
    fn: () => R | Promise<R>,
    abortable: Abortable,
  ): Promise<R> {
    const call = Promise.resolve().then(fn)
    const limit = this.#ns.policy.hardTimeout
    if (limit === undefined) return call
    const answer = await within(call, limit)
    if (answer !== TIMEOUT) return answer
    abortable.abort()
    call.catch(() => {})
    throw new TimeoutError(limit, `${what} did not answer within ${limit} ms`, {
      tier: 'loader',
      namespace: this.#ns.name,
      ...(key === undefined ? {} : { key }),
    })
  }

  /** Caches a loaded value; see {@link storeLoaded}. */
  storeLoaded(
    key: string,
    value: V,
    from: { token: number; seen: Seen<V> | undefined; startedAt: number },
    caching: Caching = DEFAULT_CACHING,
  ): Promise<void> {
    return storeLoaded(this.#ns, key, value, from, caching)
  }

  /**
   * One load or refresh of a key. With a lock provider and shared tiers it runs under the load
   * lock: a read waits up to `lockWait` for another instance's load, then takes what it stored; a
   * refresh does not wait (whoever holds the lock refreshes).
   */
  async #run(job: LoadJob<V>): Promise<V | undefined> {
    const provider = this.#ns.ctx.lock
    if (provider === undefined || !this.#ns.tiers.shared) return this.#loadHere(job, undefined)
    let lock: Lock | undefined
    try {
      lock = await provider.acquire(`load:${this.#ns.name}:${job.key}`.slice(0, 512), {
        ttl: this.#ns.policy.lockTtl,
        waitMs: job.mode === 'refresh' ? 0 : this.#ns.policy.lockWait,
      })
    } catch (error) {
      this.#ns.tiers.report('lock', 'acquire', error, job.key)
    }
    if (lock === undefined && job.mode === 'refresh') return undefined // another instance refreshes it
    if (job.mode === 'load') {
      // another instance may have loaded it while we waited (a forced load wants its own)
      let found: CacheEntry<V> | undefined
      try {
        found = await this.#loadedElsewhere(job.key, job.token)
      } catch (error) {
        await this.#release(lock, job.key)
        throw error
      }
      if (found !== undefined) {
        await this.#release(lock, job.key)
        return found.value
      }
    }
    return this.#loadHere(job, lock)
  }

  /** Loads in this instance, holding `lock` (if any) until done. */
  async #loadHere(job: LoadJob<V>, lock: Lock | undefined): Promise<V | undefined> {
    const { key, token } = job
    const record = this.#ns.tiers.record
    const unflushed = this.#ns.unflushed.of(key)
    if (unflushed !== undefined) {
      // the record may not have this instance's latest write yet
      const served = await this.#ns.unflushed.serve(key, unflushed, token)
      if (served !== undefined) {
        await this.#release(lock, key)
        return served.value
      }
      // deleted and not written since: the loader decides, as for a key the record lacks
    } else if (job.mode !== 'load' && record !== undefined) {
      // the record is the source: refreshing means copying its current value into the caches
      try {
        const e = await record.get(key)
        if (e !== undefined) {
          await this.#ns.tiers.fill(key, e, token)
          return e.value
        }
      } finally {
        await this.#release(lock, key)
      }
      lock = undefined
    }
    try {
      // Under the lock, the fill must land before the lock goes: the instances waiting for it
      // then read the value from the shared tiers instead of loading it again.
      return await this.#callLoader(job, lock === undefined && job.mode === 'load')
    } finally {
      await this.#release(lock, key)
    }
  }

  /**
   * Runs the loader and caches its value. With `answerFirst`, the value goes back before the
   * compare-and-set into the caches has answered: the fill's first command is already sent (so a
   * write the caller makes next reaches the tier after it), and the read stays the key's flight
   * until the fill ends, so reads meanwhile join it instead of loading again.
   */
  async #callLoader(job: LoadJob<V>, answerFirst = false): Promise<V | undefined> {
    const { key, loader, stale, token } = job
    this.#ns.stats.loads++
    const startedAt = this.#ns.ctx.now()
    const context = new LoadContext(this.#ns.name, stale?.value)
    const call = this.bounded('loader', key, () => loader(key, context), context)
    const value = await (loadWatched() ? this.#watched(job, startedAt, call) : call)
    const caching = context.settle()
    this.#backoff.delete(key)
    if (value === undefined) {
      this.missed(key, token, caching)
      return undefined
    }
    this.#ns.negative.forget(key)
    const fill = this.storeLoaded(key, value, { token, seen: job.seen, startedAt }, caching)
    const freshUntil = answerFirst ? this.#answersFirst(job, caching) : undefined
    if (freshUntil === undefined) {
      await fill
      return value
    }
    const quiet = fill.catch((error: unknown) =>
      this.#ns.tiers.report('tiered', 'fill', error, key),
    )
    this.#ns.ctx.fills.add(quiet)
    this.#ns.flights.holdRead(key, quiet, freshUntil)
    return value
  }

  /**
   * Whether a loaded value may go back before its fill answers: only when the fill waits on a
   * tier other than the in-process L1 (whose fill is done at once), and without tags (whose
   * clock is read first). Gives until when the value is surely fresh, for reads that join it.
   */
  #answersFirst(job: LoadJob<V>, caching: Caching): number | undefined {
    if (caching.skip || caching.tags.length !== 0) return undefined
    const { caches, coord, l1sync } = this.#ns.tiers
    const tier = caches[coord]
    if (tier === undefined || tier === l1sync || job.seen?.[coord] === null) return undefined
    const p = this.#ns.policy
    const life = caching.ttl ?? p.ttl * (1 - p.jitter)
    return this.#ns.ctx.now() + life
  }

  /** Publishes how the load of `job` ended (someone listens to load events). */
  async #watched(
    job: LoadJob<V>,
    startedAt: number,
    call: Promise<V | undefined>,
  ): Promise<V | undefined> {
    const event = {
      namespace: this.#ns.name,
      key: job.key,
      purpose: job.mode === 'refresh' ? ('refresh' as const) : ('read' as const),
    }
    try {
      const value = await call
      const outcome = value === undefined ? ('not_found' as const) : ('value' as const)
      publishLoad({ ...event, durationMs: this.#ns.ctx.now() - startedAt, outcome })
      return value
    } catch (error) {
      const outcome = error instanceof TimeoutError ? ('timeout' as const) : ('error' as const)
      publishLoad({ ...event, durationMs: this.#ns.ctx.now() - startedAt, outcome, error })
      throw error
    }
  }

  /**
   * After waiting for the load lock: a fresh entry another instance put in a shared tier (L2, L3,
   * the record), copied into the tiers above it.
   */
  async #loadedElsewhere(key: string, token: number): Promise<CacheEntry<V> | undefined> {
    const now = this.#ns.ctx.now()
    const { caches, l1, record } = this.#ns.tiers
    for (let i = l1 === undefined ? 0 : 1; i < caches.length; i++) {
      const tier = caches[i] as CacheStore<V>
      try {
        const e = await tier.get(key)
        if (e !== undefined && e.tags.length !== 0) await this.#ns.ctx.tags.ensure(e.tags)
        if (
          e !== undefined &&
          !this.#ns.unflushed.hides(key, e) &&
          this.#ns.freshness.classify(e, now) === 'fresh'
        ) {
          await this.#ns.tiers.copyUp(key, e, i, token)
          return e
        }
      } catch (error) {
        this.#ns.tiers.report(tier.tier, 'get', error, key)
      }
    }
    if (this.#ns.unflushed.of(key) !== undefined) return undefined // #loadHere serves it
    if (record === undefined) return undefined
    try {
      const e = await record.get(key)
      if (e !== undefined && (e.expiresAt === null || now < e.expiresAt)) {
        await this.#ns.tiers.fill(key, e, token)
        return e
      }
    } catch (error) {
      // the loader must not run for a key the record may hold
      this.#ns.tiers.report(record.tier, 'get', error, key)
      throw error
    }
    return undefined
  }

  async #release(lock: Lock | undefined, key: string): Promise<void> {
    await lock?.release().catch((error) => this.#ns.tiers.report('lock', 'release', error, key))
  }
}
