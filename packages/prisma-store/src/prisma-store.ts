import {
  type AppendResult,
  type CacheEntry,
  type CacheStore,
  type ChangeBuilder,
  type ChangeRecord,
  type ChangeRecordingStore,
  type Codec,
  globTokensToRegExpSource,
  parseGlob,
  type Serializer,
  type SetManyItem,
  type SetOptions,
  type SetResult,
  type TrackedBatchItem,
  type TrackedBatchResult,
  type TrackedBatchStore,
  type TrackedWrite,
  type TrackedWriteResult,
  type VersionedDelete,
  type VersionedDeleteStore,
  type VersionFloor,
  type VersionFloorStore,
  validateKey,
} from '@actor-cache/core'
import { writeMany, writeManyWithChanges } from './batch-writes.js'
import type { PrismaTier } from './prisma-tier.js'
import { prepareWrite } from './row-codec.js'
import { deleteOlderVersions, deleteWhere } from './store-deletes.js'
import { hasLive, readFloors, readMany, readOne } from './store-reads.js'
import { type StoreScope, TIER } from './store-scope.js'
import { readTtl, writeTtl } from './store-ttl.js'
import { writeTrackedBatch } from './tracked-batch.js'
import { writeWithChange } from './tracked-write.js'
import { upsert } from './upsert.js'

// Its reads, writes, deletes and TTL operations live in modules of their own, over the scope the
// store holds.
/** The Postgres store of one namespace. */
export class PrismaStore<V = unknown>
  implements
    CacheStore<V>,
    VersionedDeleteStore,
    ChangeRecordingStore<V>,
    TrackedBatchStore<V>,
    VersionFloorStore
{
  readonly tier = TIER
  readonly namespace: string
  readonly #scope: StoreScope

  /** @internal Use {@link PrismaTier.namespace}. */
  constructor(owner: PrismaTier, namespace: string, defaultTtl: number, codec: Codec) {
    this.namespace = namespace
    this.#scope = { owner, namespace, defaultTtl, codec }
  }

  get(key: string): Promise<CacheEntry<V> | undefined> {
    return readOne<V>(this.#scope, key)
  }

  getMany(keys: readonly string[]): Promise<(CacheEntry<V> | undefined)[]> {
    return readMany<V>(this.#scope, keys)
  }

  /**
   * Where the versions of `keys` stand, tombstones included, in one statement: what write-behind
   * reads for keys the caches keep no version head for.
   */
  versionFloors(keys: readonly string[]): Promise<VersionFloor[]> {
    return readFloors(this.#scope, keys)
  }

  async set(key: string, value: V, options?: SetOptions | number): Promise<SetResult> {
    const p = prepareWrite(this.#scope, key, value, options)
    return this.#scope.owner._runPrepared('set', (db) => upsert(this.#scope, db, p))
  }

  /**
   * Writes a batch. When every item carries an explicit `version` and keys are distinct (the
   * write-behind case) it is one `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT` statement;
   * otherwise the items run in order inside one transaction. Either way all or nothing.
   */
  setMany(items: readonly SetManyItem<V>[]): Promise<SetResult[]> {
    return writeMany(this.#scope, items)
  }

  /**
   * Writes a batch and the state changes that belong to it in one transaction: both land or
   * neither does (a change for an entity version already logged rolls the writes back with
   * `ConflictError`). Values of the changes are written with `options.serializer`, else the
   * store's `changeSerializer`.
   */
  async setManyWithChanges(
    items: readonly SetManyItem<V>[],
    changes: readonly ChangeRecord[],
    options: { serializer?: Serializer } = {},
  ): Promise<{ results: SetResult[]; changes: AppendResult }> {
    return writeManyWithChanges(
      this.#scope,
      items,
      changes,
      options.serializer ?? this.#scope.owner._changeSerializer,
    )
  }

  /**
   * Queued writes of tracked entities (write-behind) and their change records, in one
   * transaction: each entity locked and read once, its writes built in version order from the
   * state the previous one left, one statement per entity for its row and records. Writes at or
   * below the stored version are skipped (`persisted`: a replayed batch); a write above the next
   * version waits (`gap`); a version whose write never came is logged as `unused`, a record that
   * changes nothing. See `TrackedBatchStore` in core.
   */
  writeTrackedBatch(items: readonly TrackedBatchItem<V>[]): Promise<TrackedBatchResult[]> {
    return writeTrackedBatch(
      this.#scope,
      items as readonly TrackedBatchItem<unknown>[],
      this.#scope.owner._changeSerializer,
    )
  }

  /**
   * A tracked write: locks the entity's row, reads its prior state with the database clock, calls
   * `build` for the change record, then writes the row at the record's version and appends the
   * record to `ac_state_changes`, in one transaction: both land or neither does. A delete leaves a
   * tombstone that keeps the version and the record's hash, so the entity's chain continues when
   * it is created again. The record's values are written with `options.serializer`, else the
   * store's `changeSerializer`.
   * @throws {ConflictError} from the builder; when another writer created the entity since it was
   *   read (possible only when it had no row); when the record's version or id is logged already
   * @throws {InvalidOptionError} when the record is not the entity's next one (`version`,
   *   `prevHash`, `entityType`, `entityId`, `changeType`, `hash`); nothing is written
   */
  writeWithChange(
    key: string,
    write: TrackedWrite<V>,
    build: ChangeBuilder,
    options: { serializer?: Serializer } = {},
  ): Promise<TrackedWriteResult> {
    return writeWithChange(
      this.#scope,
      key,
      write,
      build,
      options.serializer ?? this.#scope.owner._changeSerializer,
    )
  }

  async delete(key: string): Promise<boolean> {
    validateKey(key, this.namespace)
    return (await deleteWhere(this.#scope, 'key = $3', key)) > 0
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) validateKey(key, this.namespace)
    if (keys.length === 0) return 0
    return deleteWhere(this.#scope, 'key = ANY($3::text[])', [...keys])
  }

  /**
   * Versioned deletes: each key whose stored version is older than the given one is replaced by a
   * tombstone that keeps the version for `tombstoneTtl`, so older writes arriving later are
   * ignored. One statement; returns how many live rows were removed.
   */
  deleteVersions(items: readonly VersionedDelete[]): Promise<number> {
    return deleteOlderVersions(this.#scope, items)
  }

  async deletePattern(pattern: string): Promise<number> {
    const source = globTokensToRegExpSource(parseGlob(pattern))
    return deleteWhere(this.#scope, 'key ~ $3', source)
  }

  async clear(): Promise<number> {
    return deleteWhere(this.#scope, 'TRUE')
  }

  exists(key: string): Promise<boolean> {
    return hasLive(this.#scope, key)
  }

  getTTL(key: string): Promise<number | undefined> {
    return readTtl(this.#scope, key)
  }

  setTTL(key: string, ttl: number): Promise<boolean> {
    return writeTtl(this.#scope, key, ttl)
  }
}
