import type { CacheEntry } from '@actor-cache/core'
import { publishStale } from './events.js'
import type { TagClock } from './invalidation.js'
import type { NamespaceStats } from './namespace-context.js'
import type { Loader, ResolvedPolicy } from './policy.js'

/** What a cached copy is good for. */
export type EntryState = 'fresh' | 'stale' | 'dead'

/** Starts a refresh-ahead of `key`, whose copy `e` is due for one. */
export type RefreshAhead<V> = (
  key: string,
  e: CacheEntry<V>,
  now: number,
  loader: Loader<V>,
) => void

/**
 * When a cached copy may be served. Tiers keep copies `grace` ms past their TTL: a copy is fresh
 * until its logical expiry (the physical one minus grace), stale within grace (served only when
 * the loader or a tier fails, or on a timeout), dead after that or once one of its tags was
 * invalidated at or after it was written. Also: the life of new copies (TTL with jitter, plus
 * grace), and when refresh-ahead is due.
 */
export class Freshness<V> {
  readonly #tags: TagClock
  readonly #now: () => number
  readonly #random: () => number
  readonly #p: ResolvedPolicy<V>
  /** No grace and no refresh-ahead: a copy in L1 is fresh until the tier drops it. */
  readonly #plain: boolean
  readonly #stats: NamespaceStats
  readonly #refresh: RefreshAhead<V>
  readonly #name: string

  constructor(
    name: string,
    policy: ResolvedPolicy<V>,
    clock: { now: () => number; random: () => number; tags: TagClock },
    stats: NamespaceStats,
    refresh: RefreshAhead<V>,
  ) {
    this.#name = name
    this.#p = policy
    this.#tags = clock.tags
    this.#now = clock.now
    this.#random = clock.random
    this.#plain = policy.grace === 0 && !policy.refreshAhead
    this.#stats = stats
    this.#refresh = refresh
  }

  classify(e: CacheEntry<V>, now: number): EntryState {
    if (e.tags.length !== 0 && this.#tags.isStale(e.tags, e.createdAt)) return 'dead'
    if (e.expiresAt === null) return 'fresh'
    if (now < e.expiresAt - this.#p.grace) return 'fresh'
    return now < e.expiresAt ? 'stale' : 'dead'
  }

  /**
   * The L1 fast path's check of a copy L1 holds: tags, logical expiry (grace); a read with a
   * loader of a copy near its expiry starts a refresh-ahead.
   */
  usable(key: string, e: CacheEntry<V>, loader: Loader<V> | undefined): boolean {
    if (e.tags.length !== 0 && this.#tags.isStale(e.tags, e.createdAt)) return false
    if (this.#plain || e.expiresAt === null) return true
    const now = this.#now()
    const logical = e.expiresAt - this.#p.grace
    if (now >= logical) return false
    if (this.#p.refreshAhead && loader !== undefined) this.#refresh(key, e, now, loader)
    return true
  }

  /** True when a fresh copy has less than `refreshAheadThreshold` of its life left. */
  refreshDue(e: CacheEntry<V>, now: number): boolean {
    if (!this.#p.refreshAhead || e.expiresAt === null) return false
    const logical = e.expiresAt - this.#p.grace
    return logical - now < (logical - e.createdAt) * this.#p.refreshAheadThreshold
  }

  /**
   * Physical expiry of a copy written at `now`: `ttl`, else the namespace's TTL less up to
   * `jitter` of it (so expiries spread), plus grace; `null` for a copy that never expires.
   */
  expiry(now: number, ttl: number | undefined): number | null {
    const base = ttl ?? this.#p.ttl
    if (base === Infinity) return null
    const life = ttl === undefined ? base * (1 - this.#p.jitter * this.#random()) : base
    return Math.ceil(now + life + this.#p.grace)
  }

  /** Answers a read of `key` with a copy within grace (counted and published). */
  serveStale(stale: CacheEntry<V>, key: string): V {
    this.#stats.staleServed++
    publishStale(this.#name, key)
    return stale.value
  }
}
