import {
  type ClaimResult,
  type ClaimSetOptions,
  ConflictError,
  hasVersionedDeletes,
  hasVersionFloors,
  hasVersionHeads,
  type SetResult,
  type VersionFloor,
  type VersionHeadStore,
} from '@actor-cache/core'
import { LocalVersionHeads } from './local-heads.js'
import type { NamespaceParts } from './namespace-context.js'
import { VersionFloors } from './version-floors.js'
import type { Write } from './writes.js'

/** How long a version head lives at least after the last write or delete of its key (ms). */
const HEAD_TTL = 7 * 24 * 60 * 60 * 1000

/** An applied claim: the version taken and where the key stood before. */
export interface Claimed extends SetResult {
  readonly previous?: VersionFloor
}

/**
 * Versions for write-behind writes that count 1, 2, 3, … per key, like the store of record's:
 * the coordinating cache tier keeps each key's version head and claims the next one atomically
 * with the write ({@link VersionHeadStore}: L2, or this process's heads when the in-process L1 is
 * the only cache tier). For a key with no head (never written, or not for `HEAD_TTL`), the floor
 * comes from the record ({@link VersionFloors}) and this instance's unflushed writes.
 */
export class VersionClaims<V> {
  readonly #ns: NamespaceParts<V>
  readonly #heads: VersionHeadStore<V>
  readonly #floors: VersionFloors<V>

  private constructor(parts: NamespaceParts<V>, heads: VersionHeadStore<V>) {
    this.#ns = parts
    this.#heads = heads
    const record = parts.tiers.record
    if (record === undefined) throw new Error('write-behind version claims need a store of record')
    this.#floors = new VersionFloors(record, parts.ctx.now)
  }

  /** The claims of a namespace whose coordinating tier keeps heads; `undefined` otherwise. */
  static for<V>(parts: NamespaceParts<V>): VersionClaims<V> | undefined {
    const { caches, coord, l1sync, record } = parts.tiers
    const tier = caches[coord]
    if (tier === undefined || record === undefined) return undefined
    // a record with tombstones must say where they stand, or a floor could fall below one
    if (hasVersionedDeletes(record) && !hasVersionFloors(record)) return undefined
    if (hasVersionHeads<V>(tier)) return new VersionClaims(parts, tier)
    if (tier === l1sync && caches.length === 1) {
      const heads = new LocalVersionHeads(l1sync)
      parts.tiers.onRecordRow((key, version) => heads.seed(key, version))
      return new VersionClaims(parts, heads)
    }
    return undefined
  }

  /**
   * Claims the version of write `w` and stores its value at it in the coordinating tier. Not
   * applied: an explicit `version` not above the head.
   * @throws {ConflictError} when `expectedVersion` does not match
   */
  async set(w: Write<V>): Promise<Claimed> {
    const { key, value, options } = w
    const base = {
      expiresAt: w.expiresAt,
      createdAt: w.createdAt,
      tags: w.tags,
      headTtl: HEAD_TTL,
      ...(options.expectedVersion === undefined
        ? options.version === undefined
          ? {}
          : { version: options.version }
        : { expectedVersion: options.expectedVersion }),
    }
    return this.#claim(
      key,
      (floor) => this.#heads.claimSet(key, value, floor === undefined ? base : { ...base, floor }),
      // a tracked write's version must be exact: its change record takes it
      options.expectedVersion !== undefined || w.stamp !== undefined,
    )
  }

  /**
   * {@link set} made at once, when the heads are this process's and the key has one (or the
   * write is refused: a conflict throws); `undefined` when the claim must wait (heads in a shared
   * tier, or a key whose floor must be read): then call {@link set}. Saves a write its promise
   * hops on the path where nothing waits.
   * @throws {ConflictError} when `expectedVersion` does not match
   */
  setNow(w: Write<V>): Claimed | undefined {
    const heads = this.#heads
    if (!(heads instanceof LocalVersionHeads)) return undefined
    const { key, options } = w
    const o: ClaimSetOptions = {
      expiresAt: w.expiresAt,
      createdAt: w.createdAt,
      tags: w.tags,
      headTtl: HEAD_TTL,
    }
    if (options.expectedVersion !== undefined) o.expectedVersion = options.expectedVersion
    else if (options.version !== undefined) o.version = options.version
    let r: ClaimResult
    try {
      r = heads.claimSetNow(key, w.value, o)
    } catch (error) {
      throw this.#conflict(key, error)
    }
    return r.needsFloor === true ? undefined : r
  }

  /**
   * Claims the version of a delete of `key` and removes the value from the coordinating tier.
   * @throws {ConflictError} when `expectedVersion` does not match
   */
  delete(key: string, expectedVersion?: number, tracked = false): Promise<Claimed> {
    const base = {
      headTtl: HEAD_TTL,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
    }
    return this.#claim(
      key,
      (floor) => this.#heads.claimDelete(key, floor === undefined ? base : { ...base, floor }),
      expectedVersion !== undefined || tracked,
    )
  }

  /** Takes back claim `c` of `key`, whose write the queue refused (best effort). */
  async release(key: string, c: Claimed): Promise<void> {
    if (c.previous === undefined) return
    try {
      await this.#heads.releaseClaim(key, c.version, c.previous)
    } catch (error) {
      this.#ns.tiers.report(this.#tier, 'set', error, key)
    }
  }

  get #tier(): string {
    return this.#ns.tiers.caches[this.#ns.tiers.coord]?.tier ?? 'l1'
  }

  async #claim(
    key: string,
    claim: (floor: VersionFloor | undefined) => Promise<ClaimResult>,
    exact: boolean,
  ): Promise<Claimed> {
    try {
      let r = await claim(undefined)
      if (r.needsFloor === true) r = await claim(await this.#floor(key, exact))
      if (r.needsFloor === true)
        throw new Error(`no version head for "${key}" although a floor was given`)
      return r
    } catch (error) {
      if (error instanceof ConflictError) throw this.#conflict(key, error)
      // the claim may still apply: a value nobody acknowledged must not stay readable there
      if (!(this.#heads instanceof LocalVersionHeads)) this.#ns.tiers.failed(key, error)
      throw error
    }
  }

  /** A conflict of a claim, as the namespace reports it; any other error as it is. */
  #conflict(key: string, error: unknown): unknown {
    if (!(error instanceof ConflictError)) return error
    return new ConflictError(error.expectedVersion, error.actualVersion, {
      tier: 'tiered',
      namespace: this.#ns.name,
      key,
    })
  }

  /** Where `key`'s versions stand: the record's floor, or this instance's unflushed write above it. */
  async #floor(key: string, exact: boolean): Promise<VersionFloor> {
    const floor = await this.#floors.of(key, exact)
    const p = this.#ns.unflushed.of(key)
    if (p !== undefined && p.version >= floor.version) {
      return { version: p.version, exists: p.op === 'set' }
    }
    return floor
  }
}
