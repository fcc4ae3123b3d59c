import {
  type ChangeStamp,
  ConflictError,
  hasVersionedDeletes,
  InvalidOptionError,
  type QueuedWrite,
  type SetResult,
  TimeoutError,
  type WriteQueue,
} from '@actor-cache/core'
import type { NamespaceParts } from './namespace-context.js'
import { isUnknownOutcome } from './unknown-outcomes.js'
import { type Claimed, VersionClaims } from './version-claims.js'
import type { Write } from './writes.js'

/**
 * Write-behind versions taken from the clock are epoch ms × 1000 (about 1.8e15 today); versions
 * below this come from loads and record rows of write-through history.
 */
const CLOCK_VERSIONS = 1e15

/** A tracked write-behind namespace whose coordinating cache tier keeps no version heads. */
function untrackable(namespace: string): InvalidOptionError {
  return new InvalidOptionError(
    'tracking',
    `namespace "${namespace}" is tracked with write_behind: its versions must count 1, 2, 3, which needs L2 from @actor-cache/redis or the in-process L1 as the only cache tier`,
  )
}

/** The version a key has now, as a write-behind write sees it. */
interface Current {
  version: number
  /** The coordinating cache tier holds the key at `version`: claim the next with compare-and-set. */
  inCoord: boolean
  /** New versions go above this. */
  floor: number
}

/**
 * Write-behind, in the call: a version is claimed in the coordinating cache tier (L2, else L1):
 * the next after the key's version head where the tier keeps heads ({@link VersionClaims}: 1, 2,
 * 3, … like the record's); otherwise with compare-and-set, or from the clock for a key the caches
 * do not hold. The caches get
 * the value, the write queue gets the write, and the unflushed-write overlay keeps it until the
 * flusher ({@link WriteBehindFlusher}) has persisted it. Compare-and-set writes of a key run one
 * at a time (across instances under the lock provider). A delete is queued the same way, and also
 * applied to the record at once when it is reachable.
 */
export class WriteBehind<V> {
  /** The namespace's parts this one works with. */
  readonly #ns: NamespaceParts<V>
  /** Compare-and-set write-behind writes of keys the caches do not hold, one at a time per key. */
  readonly #casChains = new Map<string, Promise<unknown>>()
  /** Dense versions from version heads, when the coordinating tier keeps them. */
  readonly #claims: VersionClaims<V> | undefined
  #lastClockVersion = 0

  constructor(parts: NamespaceParts<V>) {
    this.#ns = parts
    this.#claims = VersionClaims.for(parts)
  }

  write(w: Write<V>): Promise<SetResult> {
    if (w.stamp !== undefined && this.#claims === undefined)
      return Promise.reject(untrackable(this.#ns.name))
    if (w.options.expectedVersion !== undefined && this.#claims === undefined) {
      // the check reads the record when the caches do not hold the key: without this, two
      // compare-and-set writes could both pass it
      return this.#oneAtATime(w.key, () => this.#writeOnce(w))
    }
    return this.#writeOnce(w)
  }

  /**
   * Queues a delete of `key` (the durable one) and deletes the row at once when the record can;
   * true when the record or an unflushed write of this instance had the key (a loaded value does
   * not count), or, when the record cannot answer, when the caches had it.
   */
  async delete(
    key: string,
    queue: WriteQueue<QueuedWrite>,
    tracked: { stamp?: ChangeStamp | undefined; expectedVersion?: number | undefined } = {},
  ): Promise<boolean> {
    const { stamp, expectedVersion } = tracked
    if (stamp !== undefined && this.#claims === undefined) throw untrackable(this.#ns.name)
    const claimed = await this.#deleteVersion(key, expectedVersion, stamp !== undefined)
    if (claimed === undefined) return false // absent by its version head: nothing to delete
    const { version, cached } = claimed
    let existed = this.#ns.unflushed.of(key)?.op === 'set'
    await queue.enqueue([
      {
        namespace: this.#ns.name,
        key,
        op: 'delete',
        version,
        expiresAt: null,
        tags: [],
        enqueuedAt: this.#ns.ctx.now(),
        ...stamp,
      },
    ])
    this.#ns.unflushed.add(key, {
      version,
      op: 'delete',
      value: undefined,
      tags: [],
      createdAt: this.#ns.ctx.now(),
    })
    // The queued delete is the durable one. Deleting the record now as well keeps readers that
    // miss every cache from seeing the old row until the flush; if the record is down, the
    // queue still carries the delete. A record with versioned deletes keeps a tombstone, so
    // older queued writes of the key flushed later cannot bring the row back.
    // a tracked delete is logged with its change record by the flusher, not deleted here
    if (stamp !== undefined) return existed || cached
    const record = this.#ns.tiers.record
    try {
      if (record !== undefined && hasVersionedDeletes(record)) {
        if ((await record.deleteVersions([{ key, version }])) > 0) existed = true
      } else if ((await record?.delete(key)) === true) existed = true
    } catch (error) {
      this.#ns.tiers.report(record?.tier ?? 'record', 'delete', error, key)
      existed ||= cached
    }
    return existed
  }

  /**
   * The version of a delete of `key`, and whether the caches had the key; `undefined` when the
   * key's version head says it is absent (no version is taken).
   */
  async #deleteVersion(
    key: string,
    expectedVersion: number | undefined,
    tracked: boolean,
  ): Promise<{ version: number; cached: boolean } | undefined> {
    if (this.#claims !== undefined) {
      const c = await this.#claims.delete(key, expectedVersion, tracked)
      return c.applied ? { version: c.version, cached: c.previous?.exists === true } : undefined
    }
    const current = await this.#currentVersion(key, { readRecord: false })
    // A clock version even for a cached key: a delete is ordered after the writes before it
    // without compare-and-set in the caches, and above any version a racing write takes there.
    return { version: this.#nextVersion({ ...current, inCoord: false }), cached: current.inCoord }
  }

  /** Claims a version, queues the write (resolving once the queue has it), fills the other tiers. */
  async #writeOnce(w: Write<V>): Promise<SetResult> {
    const { key, value, expiresAt, tags, createdAt } = w
    const queue = this.#ns.ctx.queue
    if (queue === undefined)
      throw new InvalidOptionError('queue', 'write_behind needs a write queue')
    const claims = this.#claims
    const claim: Claimed =
      claims === undefined ? await this.#claim(w) : (claims.setNow(w) ?? (await claims.set(w)))
    if (!claim.applied) return claim // an explicit older version: ignored
    const version = claim.version
    try {
      await queue.enqueue([
        {
          namespace: this.#ns.name,
          key,
          op: 'set',
          value,
          version,
          expiresAt: null,
          tags,
          enqueuedAt: createdAt,
          ...w.stamp,
        },
      ])
    } catch (error) {
      // not acknowledged: the caches must not keep a write the record will never see (nor, when
      // the enqueue may still apply, one older than it)
      if (isUnknownOutcome(error)) this.#ns.tiers.uncertain(key)
      else {
        for (const tier of this.#ns.tiers.caches) await this.#ns.tiers.drop(tier, key)
        await this.#claims?.release(key, claim)
      }
      throw error
    }
    this.#ns.unflushed.add(key, { version, op: 'set', value, tags, createdAt })
    if (version > this.#lastClockVersion) this.#lastClockVersion = version
    const { caches, coord, l1sync } = this.#ns.tiers
    const copy = { version, expiresAt, createdAt, tags }
    for (let i = 0; i < caches.length; i++) {
      if (i === coord) continue
      if (this.#claims !== undefined && l1sync !== undefined && caches[i] === l1sync) {
        // a newer version there is a loaded copy, or another write this instance will hear of
        if (!l1sync.setSync(key, value, copy).applied) l1sync.deleteSync(key)
      } else await this.#ns.tiers.put(i, key, value, copy)
    }
    return { applied: true, version }
  }

  /**
   * Claims the write's version in the coordinating cache tier, retrying while other writes move
   * the key on. Not applied: an explicit `version` older than the tier's.
   * @throws {ConflictError} when `expectedVersion` does not match, or the claim kept losing
   */
  async #claim(w: Write<V>): Promise<SetResult> {
    const { key, value, options, expiresAt, tags, createdAt } = w
    const coord = this.#ns.tiers.caches[this.#ns.tiers.coord]
    const l1sync = this.#ns.tiers.l1sync
    for (let attempt = 0; ; attempt++) {
      const current = await this.#currentVersion(key, {
        readRecord: options.expectedVersion !== undefined,
      })
      if (options.expectedVersion !== undefined && options.expectedVersion !== current.version) {
        throw new ConflictError(options.expectedVersion, current.version, {
          tier: 'tiered',
          namespace: this.#ns.name,
          key,
        })
      }
      // compare-and-set checks the version seen; a key the caches do not hold still gets a clock
      // version, above a tombstone the record may keep for it
      const next = options.version ?? this.#nextVersion(current)
      if (coord === undefined) return { applied: true, version: next }
      const setOptions =
        current.inCoord && options.version === undefined
          ? { expiresAt, createdAt, tags, expectedVersion: current.version }
          : { expiresAt, createdAt, tags, version: next }
      try {
        const r =
          coord === l1sync
            ? l1sync.setSync(key, value, setOptions)
            : await coord.set(key, value, setOptions)
        if (r.applied || options.version !== undefined) return r
      } catch (error) {
        if (!(error instanceof ConflictError)) {
          // the claim may still apply: a value nobody acknowledged must not stay readable in L2
          if (coord !== l1sync) this.#ns.tiers.failed(key, error)
          throw error
        }
      }
      if (attempt >= 8 || options.expectedVersion !== undefined) {
        throw new ConflictError(current.version, -1, {
          tier: 'tiered',
          namespace: this.#ns.name,
          key,
        })
      }
    }
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
      const provider = this.#ns.ctx.lock
      if (provider === undefined) return await fn()
      const lock = await provider.acquire(`cas:${this.#ns.name}:${key}`.slice(0, 512), {
        ttl: this.#ns.policy.lockTtl,
        waitMs: this.#ns.policy.lockWait,
      })
      if (lock === undefined) {
        throw new TimeoutError(
          this.#ns.policy.lockWait,
          `${this.#ns.name}:${key}: another instance held the compare-and-set lock for over ${this.#ns.policy.lockWait} ms`,
          { tier: 'lock', namespace: this.#ns.name, key },
        )
      }
      try {
        return await fn()
      } finally {
        await lock.release().catch((error) => this.#ns.tiers.report('lock', 'release', error, key))
      }
    } finally {
      release()
      if (this.#casChains.get(key) === chain) this.#casChains.delete(key)
    }
  }

  /**
   * The version `key` has now: from the coordinating cache tier when it holds the key (and nothing
   * newer is pending); otherwise this instance's pending writes and, with `readRecord`
   * (compare-and-set), the record.
   */
  async #currentVersion(key: string, options: { readRecord: boolean }): Promise<Current> {
    const coord = this.#ns.tiers.caches[this.#ns.tiers.coord]
    const l1sync = this.#ns.tiers.l1sync
    const p = this.#ns.unflushed.of(key)
    const pending = p?.version ?? 0
    let cached: number | undefined
    if (coord !== undefined) {
      const e = coord === l1sync ? l1sync.getSync(key) : await coord.get(key)
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
    const record = this.#ns.tiers.record
    if (options.readRecord && cached === undefined && record !== undefined) {
      const e = await record.get(key)
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
  #nextVersion(current: Current): number {
    if (current.inCoord) return current.version + 1
    this.#lastClockVersion = Math.max(
      this.#lastClockVersion + 1,
      Math.floor(this.#ns.ctx.now()) * 1000,
      current.floor + 1,
    )
    return this.#lastClockVersion
  }
}
