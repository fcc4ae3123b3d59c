import { type CacheEntry, globToRegExp, type InvalidationMessage } from '@actor-cache/core'
import { publishHit } from './events.js'
import type { NamespaceStats } from './namespace-context.js'
import type { TierStack } from './tier-stack.js'
import { BoundedMap } from './util.js'

/** This instance's write-behind write of a key, queued and not known to be flushed yet. */
export interface PendingWrite<V> {
  version: number
  op: 'set' | 'delete'
  value: V | undefined
  tags: readonly string[]
  createdAt: number
  /**
   * An invalidation hit the key while this write was queued: other instances may have copied the
   * record's older row into shared tiers meanwhile, so the key is invalidated again once flushed.
   */
  invalidated?: boolean
}

/**
 * Where an invalidation comes from: this instance, or another one through the bus (`sentAt` by
 * its clock; only tag invalidations are dated against the writes they reach).
 */
export type Origin = { readonly remote: false } | { readonly remote: true; readonly sentAt: number }

/**
 * The unflushed-write overlay: this instance's write-behind writes until the flusher has persisted
 * them. A read that misses the caches is answered from here instead of the record's older row,
 * and new versions are taken above these. An invalidation from another instance ends serving a
 * write (what it did may be newer); a write an invalidation hit while queued is invalidated again,
 * everywhere, once flushed, so copies of the older row other instances made meanwhile go.
 */
export class UnflushedWrites<V> {
  readonly #pending = new BoundedMap<string, PendingWrite<V>>(100_000)
  /** Unflushed sets no longer served (another instance acted on the key): invalidate once flushed. */
  readonly #afterFlush = new BoundedMap<string, number>(100_000)
  readonly #tiers: TierStack<V>
  readonly #now: () => number
  readonly #stats: NamespaceStats

  constructor(tiers: TierStack<V>, now: () => number, stats: NamespaceStats) {
    this.#tiers = tiers
    this.#now = now
    this.#stats = stats
  }

  /** How many keys have an unflushed write. */
  get size(): number {
    return this.#pending.size
  }

  /** This instance's write-behind write of `key` that the record may not have yet. */
  of(key: string): PendingWrite<V> | undefined {
    return this.#pending.size === 0 ? undefined : this.#pending.get(key)
  }

  /** A write of `key` was queued. */
  add(key: string, write: PendingWrite<V>): void {
    this.#pending.set(key, write)
  }

  /**
   * True when `e` is older than a set of ours the record does not have yet (a refill from it). A
   * pending delete hides nothing: the delete cleared the caches, so what they hold came after it.
   */
  hides(key: string, e: CacheEntry<V>): boolean {
    if (this.#pending.size === 0) return false
    const p = this.#pending.get(key)
    return p !== undefined && p.op === 'set' && p.version > e.version
  }

  /**
   * Answers a read that missed the caches from this instance's unflushed write `p` of `key` (and
   * caches it again), or from the record when its row is at least as new. `undefined`: the key is
   * deleted and nothing newer was written.
   */
  async serve(key: string, p: PendingWrite<V>, token: number): Promise<{ value: V } | undefined> {
    const record = this.#tiers.record
    // Another instance may have flushed this write and a newer one since (a shared queue): the
    // record then has a version at least as new, and wins.
    let row: CacheEntry<V> | undefined
    try {
      row = await record?.get(key)
    } catch (error) {
      this.#tiers.report(record?.tier ?? 'record', 'get', error, key)
    }
    if (row !== undefined && row.version >= p.version) {
      if (this.#pending.get(key) === p) this.#pending.delete(key)
      const now = this.#now()
      if (row.expiresAt !== null && now >= row.expiresAt) return undefined
      this.#stats.recordHits++
      publishHit(this.#tiers.namespace, key, record?.tier ?? 'record', 'record')
      await this.#tiers.fill(key, row, token)
      return { value: row.value }
    }
    if (p.op === 'delete') return undefined
    this.#stats.lowerHits++
    // this instance's write the record does not have yet
    publishHit(this.#tiers.namespace, key, 'unflushed', 'unflushed')
    const value = p.value as V
    await this.#tiers.fill(key, { value, version: p.version, tags: p.tags, expiresAt: null }, token)
    return { value }
  }

  /** The flusher persisted writes up to `version` of `key`. */
  flushed(key: string, version: number): Promise<void> | undefined {
    let again = false
    const after = this.#afterFlush.size === 0 ? undefined : this.#afterFlush.get(key)
    if (after !== undefined && after <= version) {
      this.#afterFlush.delete(key)
      again = true
    }
    const pending = this.#pending.get(key)
    if (pending !== undefined && pending.version <= version) {
      this.#pending.delete(key)
      // (a delete needs none: it reached the record at once, as a tombstone, when it was made)
      if (pending.invalidated && pending.op === 'set') again = true
    }
    return again ? this.#tiers.dropUpTo(key, version) : undefined
  }

  /**
   * The record refused the write of `key` at `version` for good (dead-lettered): the caches here
   * and in other instances must not keep serving it. A newer write stays.
   */
  async rejected(key: string, version: number): Promise<void> {
    const pending = this.#pending.get(key)
    if (pending !== undefined && pending.version <= version) this.#pending.delete(key)
    const after = this.#afterFlush.get(key)
    if (after !== undefined && after <= version) this.#afterFlush.delete(key)
    await this.#tiers.dropUpTo(key, version)
  }

  /**
   * An invalidation reached keys with unflushed writes of ours. Locally, the writes stay served
   * (they are the newest values) and are invalidated again once flushed, since other instances may
   * copy the record's older row meanwhile. From another instance (its write, delete or dead
   * letter, or an invalidation), they stop being served: what it did may be newer; only the
   * invalidation after the flush remains.
   */
  hit(message: InvalidationMessage, origin: Origin): void {
    const res = message.all ? undefined : (message.patterns ?? []).map((x) => globToRegExp(x))
    const keys = message.keys === undefined ? undefined : new Set(message.keys)
    const tags = message.tags === undefined ? undefined : new Set(message.tags)
    // a tag invalidation sent before a write was made does not concern it (tag times say so)
    const tagOnly = message.tags !== undefined && message.keys === undefined && !message.all
    for (const [key, p] of [...this.#pending]) {
      const hit =
        message.all === true ||
        keys?.has(key) === true ||
        res?.some((re) => re.test(key)) === true ||
        (tags !== undefined && p.tags.some((t) => tags.has(t)))
      if (!hit) continue
      if (!origin.remote || (tagOnly && origin.sentAt < p.createdAt)) p.invalidated = true
      else {
        this.#pending.delete(key)
        if (p.op === 'set') this.#afterFlush.set(key, p.version)
      }
    }
  }
}
