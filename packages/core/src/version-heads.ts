import type { SetResult } from './store.js'

/**
 * Where a key's versions stand when no head is kept for it: the store of record's version (a
 * tombstone keeps its version) and whether the key exists there. Version `0` means never written.
 */
export interface VersionFloor {
  readonly version: number
  /** False when the key is absent (never written, or deleted): compare-and-set expects `0`. */
  readonly exists: boolean
}

/** Options of {@link VersionHeadStore.claimSet}. */
export interface ClaimSetOptions {
  /** Absolute expiry of the value (epoch ms), `null` for never. */
  expiresAt: number | null
  /** Creation time to record (epoch ms). */
  createdAt: number
  /** Tags attached to the entry. */
  tags: readonly string[]
  /** Compare-and-set against the head: the write applies only if the key is at this version (`0` = absent). */
  expectedVersion?: number
  /** An explicit version: applies only when above the head (no version is claimed twice). */
  version?: number
  /** Where versions stand when the store keeps no head for the key (see {@link ClaimResult}). */
  floor?: VersionFloor
  /**
   * How long the head lives past the write (ms): it is kept at least as long as the value, and
   * this long even when the value expires sooner.
   */
  headTtl: number
}

/** Options of {@link VersionHeadStore.claimDelete}. */
export interface ClaimDeleteOptions {
  /** Delete only if the key is at this version (`0` = absent). */
  expectedVersion?: number
  /** Where versions stand when the store keeps no head for the key. */
  floor?: VersionFloor
  /** How long the head of the deleted key lives (ms). */
  headTtl: number
}

/**
 * The outcome of a claim: a {@link SetResult} (for a delete, the delete's version) with where
 * the key stood before, or `needsFloor` when the store keeps no head for the key and the
 * call gave no `floor`: read the record's version and call again with it.
 */
export type ClaimResult =
  | (SetResult & {
      readonly needsFloor?: undefined
      /** Where the key stood before an applied claim: what {@link VersionHeadStore.releaseClaim} restores. */
      readonly previous?: VersionFloor
    })
  | { readonly needsFloor: true }

/**
 * A cache tier that keeps each key's version head (the last version written or deleted) apart
 * from the value, for longer than the value lives, and claims the next version atomically with
 * the write. Write-behind uses it to give every key versions 1, 2, 3, … like the store of
 * record's, without reading the record on each write: the record is read only for a key whose
 * head the tier does not keep (never written, or written long ago).
 *
 * A claimed write stores the value at the claimed version whatever version the tier held (a
 * loaded copy's version counts loads, not writes). `@actor-cache/redis` implements it; the heads
 * must not be evicted while writes are queued (Redis `maxmemory-policy` `noeviction` or
 * `volatile-*`, which the write queue's stream needs as well).
 */
export interface VersionHeadStore<V = unknown> {
  /**
   * Claims the next version of `key` (head + 1) and stores `value` at it, in one atomic step.
   * @throws {ConflictError} when `expectedVersion` does not match the head
   */
  claimSet(key: string, value: V, options: ClaimSetOptions): Promise<ClaimResult>
  /**
   * Claims the next version of `key` for a delete, removes the value and keeps the head. A key
   * absent by its head (or floor) takes no version: the result is not applied, and a cached
   * value under the key is removed all the same.
   * @throws {ConflictError} when `expectedVersion` does not match the head
   */
  claimDelete(key: string, options: ClaimDeleteOptions): Promise<ClaimResult>
  /**
   * Takes back an applied claim at `version` whose write was then refused (the write queue was
   * full): the head goes back to `previous` if no later claim moved it. True when it did.
   */
  releaseClaim(key: string, version: number, previous: VersionFloor): Promise<boolean>
}

/** True when `store` keeps version heads ({@link VersionHeadStore}). */
export function hasVersionHeads<V>(store: object): store is VersionHeadStore<V> {
  const s = store as Partial<VersionHeadStore<V>>
  return (
    typeof s.claimSet === 'function' &&
    typeof s.claimDelete === 'function' &&
    typeof s.releaseClaim === 'function'
  )
}

/**
 * A store of record that reads where each key's versions stand, tombstones included
 * (`@actor-cache/prisma-store`). Write-behind reads it for keys the caches keep no head for.
 */
export interface VersionFloorStore {
  /** The floor of each of `keys`, in order. */
  versionFloors(keys: readonly string[]): Promise<VersionFloor[]>
}

/** True when `store` reads version floors ({@link VersionFloorStore}). */
export function hasVersionFloors(store: object): store is VersionFloorStore {
  return typeof (store as Partial<VersionFloorStore>).versionFloors === 'function'
}
