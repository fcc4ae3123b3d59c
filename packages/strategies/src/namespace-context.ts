import type {
  CacheStore,
  InvalidationMessage,
  LockProvider,
  QueuedWrite,
  WriteQueue,
  WriteTracking,
} from '@actor-cache/core'
import type { BackgroundFills } from './background-fills.js'
import type { FillGuard } from './fill-guard.js'
import type { Flights } from './flights.js'
import type { Freshness } from './freshness.js'
import type { InvalidationTarget, TagClock } from './invalidation.js'
import type { NegativeCache } from './negative-cache.js'
import type { RecordStore, ResolvedPolicy } from './policy.js'
import type { TierStack } from './tier-stack.js'
import type { UnflushedWrites } from './unflushed-writes.js'
import type { UnknownOutcomes } from './unknown-outcomes.js'

/** Counters of one namespace. */
export interface NamespaceStats {
  /** Reads answered by L1. */
  l1Hits: number
  /** Reads answered by a lower cache tier (L2, L3 as cache). */
  lowerHits: number
  /** Reads answered by the store of record. */
  recordHits: number
  /** Loader calls. */
  loads: number
  /** Reads that found nothing anywhere (loader returned nothing or there was none). */
  misses: number
  /** Reads answered from the negative cache. */
  negativeHits: number
  /** Stale values served (grace, soft timeout, failure). */
  staleServed: number
  /** Background refreshes started. */
  refreshes: number
  /** Tier and loader failures absorbed or reported. */
  errors: number
}

/** Counters at zero. */
export function newStats(): NamespaceStats {
  return {
    l1Hits: 0,
    lowerHits: 0,
    recordHits: 0,
    loads: 0,
    misses: 0,
    negativeHits: 0,
    staleServed: 0,
    refreshes: 0,
    errors: 0,
  }
}

/** What a namespace needs from its cache. */
export interface NamespaceContext {
  readonly now: () => number
  readonly random: () => number
  readonly tags: TagClock
  readonly lock: LockProvider | undefined
  readonly queue: WriteQueue<QueuedWrite> | undefined
  /** After a write of `key` (or new life for it): other instances and dependents drop it. */
  readonly keyChanged: (namespace: string, key: string) => Promise<void>
  /** Like `keyChanged`, and this namespace's cache tiers drop `key` first (write-around). */
  readonly invalidateKey: (namespace: string, key: string) => Promise<void>
  readonly assertOpen: () => void
  /** Reports the physical life (ms, TTL + grace) of a cached entry, so tag times outlive it. */
  readonly lifeUsed: (ms: number) => void
  /** The cache's invalidation (tiers, dependents, bus). */
  readonly invalidate: (target: InvalidationTarget) => Promise<void>
  /** Clean-ups after tier calls with unknown outcomes, retried until the tiers answer. */
  readonly outcomes: UnknownOutcomes
  /** Fills of loaded values that run after their read answered; `close` waits for them. */
  readonly fills: BackgroundFills
  /** Sends an invalidation to the other instances (retried while the bus fails). */
  readonly publish: (message: InvalidationMessage) => Promise<void>
  /** Set for a tracked namespace: builds the change record of each write. */
  readonly tracking?: WriteTracking | undefined
}

/**
 * The calls only the cache makes on a namespace (the flusher's reports, invalidations it
 * dispatches). They stay out of `TieredNamespace`: the cache keeps this handle.
 */
export interface NamespaceInternals {
  /** The flusher persisted writes up to `version` of `key` (may invalidate the key again). */
  flushed(key: string, version: number): Promise<void> | undefined
  /** The write of `key` at `version` was dead-lettered: the caches must not keep serving it. */
  rejected(key: string, version: number): Promise<void>
  /** This instance's invalidation: drops what `message` names from L1. */
  dropLocal(message: InvalidationMessage): void
  /** Another instance's invalidation, sent at `sentAt` by its clock (tag invalidations). */
  dropRemote(message: InvalidationMessage, sentAt?: number): void
  /** Drops what `message` names from every cache tier of this instance. */
  dropTiers(message: InvalidationMessage): Promise<void>
  /** The bus may have lost messages: forget everything local. */
  reset(): Promise<void>
}

/** The tiers a namespace was wired with. */
export interface NamespaceTiers<V> {
  l1: CacheStore<V> | undefined
  /** Cache tiers below L1, top down (L2, then L3 when it is not the record). */
  lower: CacheStore<V>[]
  /** Which tier each of `lower` is. */
  lowerLevels: ('l2' | 'l3')[]
  record: RecordStore<V> | undefined
}

/** The parts of one namespace the others are built on. */
export interface NamespaceParts<V> {
  readonly name: string
  readonly policy: ResolvedPolicy<V>
  readonly ctx: NamespaceContext
  readonly stats: NamespaceStats
  readonly tiers: TierStack<V>
  readonly guard: FillGuard
  readonly flights: Flights<V>
  readonly freshness: Freshness<V>
  readonly negative: NegativeCache
  readonly unflushed: UnflushedWrites<V>
}
