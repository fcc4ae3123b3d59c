import {
  type ClaimDeleteOptions,
  type ClaimResult,
  type ClaimSetOptions,
  ConflictError,
  type SyncCacheStore,
  type VersionFloor,
  type VersionHeadStore,
} from '@actor-cache/core'
import { BoundedMap } from './util.js'

/**
 * Heads remembered (the first written are forgotten first); a forgotten one is read again as a
 * floor (the record and unflushed writes).
 */
const HEADS = 100_000

interface Head {
  version: number
  live: boolean
}

/**
 * Version heads kept in this process, for a write-behind namespace whose only cache tier is the
 * in-process L1: the same claims as a shared tier's ({@link VersionHeadStore}), made
 * synchronously, so they are atomic in this process.
 */
export class LocalVersionHeads<V> implements VersionHeadStore<V> {
  readonly #l1: SyncCacheStore<V>
  readonly #heads = new BoundedMap<string, Head>(HEADS)

  constructor(l1: SyncCacheStore<V>) {
    this.#l1 = l1
  }

  async claimSet(key: string, value: V, o: ClaimSetOptions): Promise<ClaimResult> {
    return this.claimSetNow(key, value, o)
  }

  /** {@link claimSet}, answered at once (nothing here waits). */
  claimSetNow(key: string, value: V, o: ClaimSetOptions): ClaimResult {
    const head = this.#head(key, o.floor)
    if (head === undefined) return { needsFloor: true }
    let version: number
    if (o.version !== undefined) {
      if (o.version <= head.version) return { applied: false, version: head.version }
      version = o.version
    } else {
      this.#check(key, head, o.expectedVersion)
      version = head.version + 1
    }
    // whatever the L1 holds (a loaded copy's version counts loads) gives way to the write: it is
    // dropped first only when it refuses the write (one write instead of a delete and a write)
    const copy = { version, expiresAt: o.expiresAt, createdAt: o.createdAt, tags: o.tags }
    let r = this.#l1.setSync(key, value, copy)
    if (!r.applied) {
      this.#l1.deleteSync(key)
      r = this.#l1.setSync(key, value, copy)
    }
    // in place: a key written again keeps its place (the map is only bounded for memory)
    this.#heads.setInPlace(key, { version, live: true })
    return {
      applied: true,
      version: r.version,
      previous: { version: head.version, exists: head.live },
    }
  }

  /**
   * The record answered a read of `key` with its row at `version`, and nothing wrote the key in
   * this process since the read began: a head for a key that has none (so its next write needs
   * no read of the record). This process is the only one claiming here, so the row is the latest.
   */
  seed(key: string, version: number): void {
    if (!this.#heads.has(key)) this.#heads.set(key, { version, live: true })
  }

  async releaseClaim(key: string, version: number, previous: VersionFloor): Promise<boolean> {
    const head = this.#heads.get(key)
    if (head?.version !== version) return false
    this.#heads.set(key, { version: previous.version, live: previous.exists })
    return true
  }

  async claimDelete(key: string, o: ClaimDeleteOptions): Promise<ClaimResult> {
    const head = this.#head(key, o.floor)
    if (head === undefined) return { needsFloor: true }
    this.#check(key, head, o.expectedVersion)
    this.#l1.deleteSync(key)
    if (!head.live) return { applied: false, version: head.version } // absent: nothing to version
    const version = head.version + 1
    this.#heads.set(key, { version, live: false })
    return { applied: true, version, previous: { version: head.version, exists: head.live } }
  }

  #head(key: string, floor: ClaimSetOptions['floor']): Head | undefined {
    const head = this.#heads.get(key)
    if (head !== undefined) return head
    return floor === undefined ? undefined : { version: floor.version, live: floor.exists }
  }

  #check(key: string, head: Head, expected: number | undefined): void {
    const seen = head.live ? head.version : 0
    if (expected !== undefined && expected !== seen) {
      throw new ConflictError(expected, seen, {
        tier: this.#l1.tier,
        namespace: this.#l1.namespace,
        key,
      })
    }
  }
}
