import {
  type CacheEntry,
  type CacheStore,
  isSyncStore,
  type SyncCacheStore,
} from '@actor-cache/core'
import type { FillGuard } from './fill-guard.js'
import type { Freshness } from './freshness.js'
import type { NamespaceContext, NamespaceStats, NamespaceTiers } from './namespace-context.js'
import type { RecordStore, ResolvedPolicy } from './policy.js'
import { isUnknownOutcome } from './unknown-outcomes.js'
import { reportError } from './util.js'

/** What a cache tier takes with an explicit version. */
export interface VersionedCopy {
  version: number
  expiresAt: number | null
  createdAt: number
  tags: readonly string[]
}

/** A value with the version and life the record (or an unflushed write) gives it. */
export type RecordRow<V> = Pick<CacheEntry<V>, 'value' | 'version' | 'tags' | 'expiresAt'>

/**
 * The tiers of one namespace, top down: the cache tiers (L1, whose synchronous calls serve the
 * fast path; L2; L3 when it is a cache) and the store of record. Copies go into the caches with
 * versions (a fill never replaces a newer write), from a lower tier up or from the record down,
 * and are taken back when a delete or invalidation overtook them (see {@link FillGuard}).
 *
 * A tier call that fails with an unknown outcome may still run (a stalled server runs it when it
 * resumes): {@link TierStack.uncertain} drops the key from L1 at once and from the shared tiers,
 * with an invalidation published, once they answer again. Tier errors are counted and reported
 * here.
 */
export class TierStack<V> {
  readonly l1: CacheStore<V> | undefined
  /** L1 when it answers synchronously (memcache): reads and writes without I/O. */
  readonly l1sync: SyncCacheStore<V> | undefined
  /** Every cache tier, top down: L1 first when present. */
  readonly caches: CacheStore<V>[]
  /** Which tier each of {@link caches} is (`l1`, `l2`, `l3`), by index. */
  readonly levels: readonly ('l1' | 'l2' | 'l3')[]
  /** Index in {@link caches} of the tier that orders versions when there is no record. */
  readonly coord: number
  readonly record: RecordStore<V> | undefined
  readonly #name: string
  readonly #p: ResolvedPolicy<V>
  readonly #ctx: NamespaceContext
  readonly #guard: FillGuard
  readonly #freshness: Freshness<V>
  readonly #stats: NamespaceStats
  #recordRow: ((key: string, version: number) => void) | undefined

  constructor(
    name: string,
    policy: ResolvedPolicy<V>,
    tiers: NamespaceTiers<V>,
    parts: {
      ctx: NamespaceContext
      guard: FillGuard
      freshness: Freshness<V>
      stats: NamespaceStats
    },
  ) {
    this.l1 = tiers.l1
    this.l1sync = tiers.l1 !== undefined && isSyncStore(tiers.l1) ? tiers.l1 : undefined
    this.caches = tiers.l1 === undefined ? [...tiers.lower] : [tiers.l1, ...tiers.lower]
    this.levels = tiers.l1 === undefined ? [...tiers.lowerLevels] : ['l1', ...tiers.lowerLevels]
    this.coord = tiers.l1 !== undefined && tiers.lower.length > 0 ? 1 : 0
    this.record = tiers.record
    this.#name = name
    this.#p = policy
    this.#ctx = parts.ctx
    this.#guard = parts.guard
    this.#freshness = parts.freshness
    this.#stats = parts.stats
  }

  /** The namespace's name. */
  get namespace(): string {
    return this.#name
  }

  /** True when a tier other than L1 (or a record) holds the namespace: other instances share it. */
  get shared(): boolean {
    return this.record !== undefined || this.caches.length > (this.l1 === undefined ? 0 : 1)
  }

  /**
   * What each cache tier holds for `key` now, fresh or not (`null`: the tier failed), for the
   * compare-and-set of a value loaded to replace it.
   */
  async versions(key: string): Promise<(CacheEntry<V> | undefined | null)[]> {
    const seen: (CacheEntry<V> | undefined | null)[] = []
    for (const tier of this.caches) {
      try {
        seen.push(tier === this.l1sync ? this.l1sync.getSync(key) : await tier.get(key))
      } catch (error) {
        this.report(tier.tier, 'get', error, key)
        seen.push(null)
      }
    }
    return seen
  }

  /**
   * Has `seen` told of every row the record (or this instance's unflushed write) answers a read
   * with, when nothing changed the key since the read began: in-process version heads start there.
   */
  onRecordRow(seen: (key: string, version: number) => void): void {
    this.#recordRow = seen
  }

  /** Copies a fresh entry found in tier `from` into the tiers above it, keeping its life and version. */
  async copyUp(key: string, e: CacheEntry<V>, from: number, token: number): Promise<void> {
    for (let i = from - 1; i >= 0; i--) {
      if (!this.#guard.unchanged(key, token)) return
      await this.put(
        i,
        key,
        e.value,
        { version: e.version, expiresAt: e.expiresAt, createdAt: e.createdAt, tags: e.tags },
        token,
      )
    }
  }

  /**
   * Writes a value of the record (with its version) into every cache tier, bottom up, for the
   * namespace's (jittered) TTL or the row's own expiry when sooner.
   */
  async fill(key: string, row: RecordRow<V>, token: number): Promise<void> {
    if (this.#recordRow !== undefined && this.#guard.unchanged(key, token)) {
      this.#recordRow(key, row.version)
    }
    const clock = this.#ctx.now()
    let expiresAt = this.#freshness.expiry(clock, undefined)
    const tags = row.tags
    if (tags.length > 0) await this.#ctx.tags.ensure(tags).catch(() => undefined)
    const now = this.#ctx.tags.created(clock, tags)
    if (row.expiresAt !== null && (expiresAt === null || row.expiresAt < expiresAt))
      expiresAt = row.expiresAt
    for (let i = this.caches.length - 1; i >= 0; i--) {
      if (!this.#guard.unchanged(key, token)) return
      await this.put(
        i,
        key,
        row.value,
        { version: row.version, expiresAt, createdAt: now, tags },
        token,
      )
    }
  }

  /**
   * Writes cache tier `i` with an explicit version. When the tier keeps a newer version, the key
   * is dropped there instead (except with write-behind, see below). With the `token` of a fill,
   * a fill a delete or invalidation overtook on the wire is taken back.
   */
  async put(i: number, key: string, value: V, copy: VersionedCopy, token?: number): Promise<void> {
    const tier = this.caches[i] as CacheStore<V>
    try {
      // A tier holding a newer version than the one written: with write-behind that is an
      // unflushed write (keep it); otherwise the version came from the record, which orders
      // versions, so the tier's copy cannot be trusted.
      const keepNewer = this.#p.strategy === 'write_behind'
      if (tier === this.l1sync) {
        const r = this.l1sync.setSync(key, value, copy)
        if (!r.applied && !keepNewer) this.l1sync.deleteSync(key)
        return
      }
      const r = await tier.set(key, value, copy)
      if (!r.applied) {
        if (!keepNewer) await tier.delete(key)
      } else if (token !== undefined && this.#guard.removedSince(key, token)) {
        await this.takeBack(tier, key, r.version)
      }
    } catch (error) {
      this.report(tier.tier, 'set', error, key)
      this.uncertain(key)
    }
  }

  /** Removes a fill of `key` at `version` from `tier`, unless a newer write replaced it there. */
  async takeBack(tier: CacheStore<V>, key: string, version: number): Promise<void> {
    try {
      const e = tier === this.l1sync ? this.l1sync.getSync(key) : await tier.get(key)
      if (e !== undefined && e.version === version) await this.drop(tier, key)
    } catch (error) {
      this.report(tier.tier, 'get', error, key)
      this.uncertain(key)
    }
  }

  async drop(tier: CacheStore<V>, key: string): Promise<void> {
    try {
      if (tier === this.l1sync) this.l1sync.deleteSync(key)
      else await tier.delete(key)
    } catch (error) {
      this.report(tier.tier, 'delete', error, key)
      this.uncertain(key)
    }
  }

  /**
   * Drops copies of `key` at or below `version` from this instance's cache tiers (a newer write,
   * such as another instance's in L2, stays) and has other instances and dependents drop theirs.
   */
  async dropUpTo(key: string, version: number): Promise<void> {
    this.#guard.removed(key)
    for (const tier of this.caches) {
      try {
        const e = tier === this.l1sync ? this.l1sync.getSync(key) : await tier.get(key)
        if (e !== undefined && e.version <= version) await this.drop(tier, key)
      } catch (error) {
        this.report(tier.tier, 'get', error, key)
        this.uncertain(key)
      }
    }
    await this.#ctx
      .keyChanged(this.#name, key)
      .catch((error) => this.report('tiered', 'invalidate', error, key))
  }

  /**
   * A write to the tier that orders versions (the record, else L2). When it fails with an unknown
   * outcome it may still apply later: the key leaves the caches here and elsewhere, so no copy
   * older than that late write outlives it.
   */
  async recordWrite<R>(key: string, write: () => Promise<R>): Promise<R> {
    try {
      return await write()
    } catch (error) {
      this.failed(key, error)
      throw error
    }
  }

  /**
   * A cache tier call on `key` failed, and may still run (a stalled server runs it when it
   * resumes): this instance's L1 drops the key now; the shared tiers drop it, and the other
   * instances are told, once they answer again. Until then reads copy nothing into the caches.
   */
  uncertain(key: string): void {
    this.l1sync?.deleteSync(key)
    this.#guard.removed(key)
    const id = `${this.#name}\u0000${key}`
    const outcomes = this.#ctx.outcomes
    if (!outcomes.has(id)) this.#guard.hold([key])
    outcomes.add(
      id,
      () => this.#settle(key),
      () => this.#guard.release([key]),
    )
  }

  /** Like {@link uncertain} for a failed tier call on `key` whose outcome is unknown. */
  failed(key: string, error: unknown): void {
    if (isUnknownOutcome(error)) this.uncertain(key)
  }

  /** Counts and reports an error the namespace absorbed (a tier, the loader, the lock). */
  report(tier: string, operation: string, error: unknown, key?: string): void {
    this.#stats.errors++
    reportError(tier, this.#name, operation, error, key)
  }

  /** Drops `key` from every cache tier (failing while a tier cannot answer), then from others. */
  async #settle(key: string): Promise<void> {
    for (const tier of this.caches) {
      if (tier === this.l1sync) this.l1sync.deleteSync(key)
      else await tier.delete(key)
    }
    this.#guard.removed(key)
    await this.#ctx.keyChanged(this.#name, key)
  }
}
