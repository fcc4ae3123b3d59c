import type { SetOptions } from '../store.js'
import type { ChangeRecord } from './change-log.js'

/**
 * An entity's stored state as a tracked write finds it, read under the write's lock: what the
 * change record is built from.
 */
export interface PriorState<V = unknown> {
  /** Whether the entity exists (a live row; a tombstone or no row is absent). */
  exists: boolean
  /** The stored value, when it exists. */
  value?: V
  /**
   * The stored version: a tombstone keeps the version of its delete; an entity without a row
   * has its newest change record's version, 0 when it has none.
   */
  version: number
  /** Hash of the entity's newest change record as the row recorded it; `null` when none. */
  headHash: string | null
  /** Timestamp (epoch ms) of that record; 0 when none. */
  headTime: number
  /** The store's clock (the database's), epoch ms. */
  now: number
}

/**
 * Builds the change record of a tracked write from the prior state. It must give the record
 * `version: prior.version + 1` and `prevHash: prior.headHash`; it may throw (a `ConflictError`
 * when the prior state is not the one the caller expected), which writes nothing. It returns
 * `undefined` when there is nothing to change (a delete of an absent entity): nothing is
 * written then either.
 */
export type ChangeBuilder = (prior: PriorState) => ChangeRecord | undefined

/** The write half of a tracked write: a value to store, or a delete. */
export type TrackedWrite<V = unknown> =
  | { kind: 'set'; value: V; options?: Pick<SetOptions, 'ttl' | 'expiresAt' | 'tags'> }
  | { kind: 'delete' }

/** Outcome of a tracked write. */
export interface TrackedWriteResult {
  /** The entity's version after the write (the change record's; the prior one when nothing changed). */
  version: number
  /** The change record, as logged; absent when the builder found nothing to change. */
  change?: ChangeRecord
}

/**
 * A store of record that writes an entity and logs its change record in one transaction: both
 * land or neither does. prisma-store's `PrismaStore` is one.
 */
export interface ChangeRecordingStore<V = unknown> {
  /**
   * Locks the entity, reads its prior state, calls `build`, then writes the entity at the
   * record's version and appends the record, atomically. A builder that throws writes nothing.
   * @throws {ConflictError} from the builder, or when another writer took the entity's next
   *   version (possible only when the entity had no row to lock)
   */
  writeWithChange(
    key: string,
    write: TrackedWrite<V>,
    build: ChangeBuilder,
  ): Promise<TrackedWriteResult>
}

/** One write of a batch for {@link TrackedBatchStore.writeTrackedBatch}. */
export interface TrackedBatchItem<V = unknown> {
  key: string
  /** The version the write was given when it was accepted (write-behind's claim). */
  version: number
  write: TrackedWrite<V>
  build: ChangeBuilder
  /**
   * The version was claimed but its write never came (its writer died between the claim and the
   * queue): the builder returns a record that changes nothing, the row keeps its value, and the
   * versions after it keep their numbers. `write` is not used.
   */
  unused?: boolean
}

/**
 * What became of one write of a tracked batch:
 * - `written`: logged and written (its record's version is the entity's next);
 * - `persisted`: the entity is at or past the write's version already (a replayed batch);
 * - `unchanged`: the builder found nothing to change (a delete of an absent entity);
 * - `gap`: the entity is below the write's version − 1 (an earlier write is not persisted yet):
 *   nothing of that entity from this write on was written; retry later, or log the missing
 *   versions as `unused`.
 */
export type TrackedBatchOutcome = 'written' | 'persisted' | 'unchanged' | 'gap'

/** Outcome of one write of a tracked batch, in input order. */
export interface TrackedBatchResult {
  outcome: TrackedBatchOutcome
  /** The entity's version after this write (the stored one when it was not written). */
  version: number
  /** The change record, when `written`. */
  change?: ChangeRecord
}

/**
 * A store of record that writes a batch of queued writes with their change records in one
 * transaction (write-behind of tracked namespaces): each entity's writes in version order, each
 * record built from the state the previous one left, versions counting on from the stored one.
 */
export interface TrackedBatchStore<V = unknown> {
  /** Locks the entities, reads their prior state, builds and writes. */
  writeTrackedBatch(items: readonly TrackedBatchItem<V>[]): Promise<TrackedBatchResult[]>
}

/** Whether a store writes tracked batches. */
export function hasTrackedBatches(store: unknown): store is TrackedBatchStore {
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof (store as Partial<TrackedBatchStore>).writeTrackedBatch === 'function'
  )
}

/** Whether a store can record changes with its writes. */
export function isChangeRecordingStore(store: unknown): store is ChangeRecordingStore {
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof (store as Partial<ChangeRecordingStore>).writeWithChange === 'function'
  )
}

/** One write of a tracked namespace, as the cache hands it to {@link WriteTracking.prepare}. */
export interface WriteToTrack<V = unknown> {
  namespace: string
  key: string
  /** `set` logs a create or an update (by the prior state), `delete` a delete. */
  kind: 'set' | 'delete'
  /** The value written (for `set`). */
  value?: V
  /** The caller's compare-and-set version, checked by the builder against the prior state. */
  expectedVersion?: number
  /** Author of the write, when the call names one (else the tracker's async context). */
  userId?: string
  systemId?: string
  /** The change record's id, when it was fixed earlier ({@link WriteTracking.stamp}). */
  changeId?: string
  /**
   * A version claimed but never written ({@link TrackedBatchItem.unused}): the record changes
   * nothing (`update` from the value to itself, or `delete` of an absent entity).
   */
  unused?: boolean
}

/** What a queued tracked write carries from its call: its change id and author. */
export interface ChangeStamp {
  changeId: string
  userId: string
  systemId: string
}

/** A tracked write whose expected version was not the stored one. */
export interface WriteConflict<V = unknown> {
  namespace: string
  key: string
  /** The version the write expected (`0` = absent). */
  expectedVersion: number
  /** The version stored (`0` = absent). */
  actualVersion: number
  /** The value the write carried. */
  value: V
  /** Resolutions tried for this write so far. */
  attempt: number
}

/**
 * What a cache calls to track its writes: the state tracker's side of the write hook.
 * `prepare` runs before any I/O and throws a typed error for a write it cannot track (no
 * author); the builder it returns runs inside the store's transaction.
 */
export interface WriteTracking {
  /** Whether writes of `namespace` are tracked. */
  tracks(namespace: string): boolean
  /** Checks the write and returns the builder of its change record. */
  prepare(write: WriteToTrack): ChangeBuilder
  /**
   * For a write persisted later (write-behind): checks it as `prepare` does, in the call, and
   * fixes its change id and author there (the async context is the call's). The builder is made
   * where the write is persisted, by `prepare` with the stamp's fields.
   */
  stamp?(write: WriteToTrack): ChangeStamp
  /**
   * Resolves a conflict by the namespace's policy: the value to write instead, expecting the
   * stored version (the cache writes it as a new tracked write, and may call again if another
   * write lands first), or `undefined` to let the `ConflictError` reach the caller.
   */
  resolve?(conflict: WriteConflict): Promise<{ value: unknown } | undefined>
  /**
   * Called after each commit of tracked writes by the store of record (a write-through or
   * write-around write or delete, once the caches reflect it; each transaction of a write-behind
   * flush), so the tracker can wake what follows the log, such as a change-stream relay, instead
   * of leaving it to its poll. Must not throw (a cache ignores what it throws: the writes are
   * committed).
   */
  logged?(): void
}
