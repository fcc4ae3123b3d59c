import {
  type ChangeLog,
  type ChangePage,
  type ChangeQuery,
  type ChangeRecord,
  type ChangeTransport,
  InvalidOptionError,
  jsonSerializer,
  type Serializer,
  validateKey,
  validateLimit,
  validateNamespace,
  type WriteTracking,
} from '@actor-cache/core'
import { appendChange } from './append-change.js'
import { exportLines } from './audit-export.js'
import { ChangeStream, type ChangeStreamOptions } from './change-stream.js'
import {
  type ChainCheckpoint,
  type CheckpointVerification,
  type ProgressListener,
  takeCheckpoint,
  verifyAgainst,
} from './checkpoint.js'
import { checkSensitiveFields, maskRecord, type SensitiveFields } from './masking.js'
import {
  checkTarget,
  type RollbackOptions,
  type RollbackResult,
  type RollbackTarget,
  rollbackState,
  writeRollback,
} from './rollback.js'
import { checkPoint, type EntityStateAt, type PointInTime, replayTo } from './state-at.js'
import { checkChange, type TrackChangeInput, type TrackChangeOptions } from './track-input.js'
import { type ChainVerification, type StoredState, verifyChain } from './verify-chain.js'
import { createWriteTracking, type TrackedNamespaces } from './write-tracking.js'

/** Options of {@link createStateTracker}. */
export interface StateTrackerOptions {
  /**
   * Where changes are logged: `createPrismaChangeLog` (PostgreSQL) or core's
   * `createMemoryChangeLog`. The caller owns it (the tracker opens and closes nothing).
   */
  log: ChangeLog
  /**
   * How values are hashed and exported; use the log's serializer so that a value read back
   * hashes as it did when written. @default jsonSerializer
   */
  serializer?: Serializer
  /** System id of changes that name none (and run outside `trackAs`). */
  systemId?: string
  /** Appends retried after losing a race for an entity's next version. @default 8 */
  maxRetries?: number
  /** Fields masked in exports, per entity type (dotted paths: `account.email`). @default {} */
  sensitiveFields?: SensitiveFields
  /**
   * Key that signs checkpoints (HMAC-SHA256), so that a checkpoint kept in a writable place
   * cannot be forged without it. At least 32 bytes.
   */
  checkpointKey?: Buffer | string
  /**
   * The change-stream transport of this application (`createRedisChangeTransport`): after each
   * change `trackChange` logs, the relay publishing it is woken wherever it runs, so subscribers
   * in other processes get the change without waiting for the relay's next poll; and
   * {@link StateTracker.changeStream} reads through it unless given another. The caller owns it.
   * The same goes for changes logged by the writes of a cache tracked by this tracker
   * ({@link StateTracker.writeTracking}), once the store of record has committed them.
   */
  changeTransport?: ChangeTransport
}

/** Options of long reads of the whole log. */
export interface LogScanOptions {
  /** Called after each batch read. */
  onProgress?: ProgressListener
  /** Records per read. @default 1000 */
  batch?: number
}

function checkOptions(options: StateTrackerOptions) {
  const log = options?.log as Partial<ChangeLog> | undefined
  const methods = ['append', 'query', 'history', 'head', 'readFeed'] as const
  if (
    typeof log !== 'object' ||
    log === null ||
    methods.some((m) => typeof log[m] !== 'function')
  ) {
    throw new InvalidOptionError('log', `must be a ChangeLog (with ${methods.join(', ')})`)
  }
  const maxRetries = options.maxRetries ?? 8
  if (!Number.isSafeInteger(maxRetries) || maxRetries < 0 || maxRetries > 100) {
    throw new InvalidOptionError(
      'maxRetries',
      `must be an integer from 0 to 100, got ${String(maxRetries)}`,
    )
  }
  const key = options.checkpointKey
  const keyBytes = key === undefined ? undefined : Buffer.from(key)
  if (keyBytes !== undefined && keyBytes.length < 32) {
    throw new InvalidOptionError('checkpointKey', 'must be at least 32 bytes')
  }
  if (
    options.systemId !== undefined &&
    (typeof options.systemId !== 'string' || options.systemId === '')
  ) {
    throw new InvalidOptionError('systemId', 'must be a non-empty string')
  }
  const transport = options.changeTransport as Partial<ChangeTransport> | undefined
  if (transport !== undefined && typeof transport?.notifyRelay !== 'function') {
    throw new InvalidOptionError('changeTransport', 'must be a ChangeTransport (with notifyRelay)')
  }
  return { log: log as ChangeLog, maxRetries, keyBytes, transport: transport as ChangeTransport }
}

/**
 * Tracks state changes: logs each with its entity's next version and a hash chaining it to the
 * previous one, answers audit queries, exports, verifies chains and checkpoints, and reads an
 * entity's state at any version or time.
 */
export class StateTracker {
  readonly #log: ChangeLog
  readonly #serializer: Serializer
  readonly #systemId: string | undefined
  readonly #maxRetries: number
  readonly #sensitive: SensitiveFields
  readonly #key: Buffer | undefined
  readonly #streams = new Set<ChangeStream>()
  readonly #transport: ChangeTransport | undefined

  constructor(options: StateTrackerOptions) {
    const checked = checkOptions(options)
    this.#log = checked.log
    this.#transport = checked.transport
    this.#maxRetries = checked.maxRetries
    this.#key = checked.keyBytes
    this.#serializer = options.serializer ?? jsonSerializer
    this.#systemId = options.systemId
    this.#sensitive = checkSensitiveFields(options.sensitiveFields)
  }

  /**
   * Logs a change as its entity's next version, linked to the previous record's hash and stamped
   * by the log's clock. Input is checked before any I/O.
   * @returns the logged record (the earlier one when its id was logged before: a retry)
   * @throws {InvalidOptionError} for a malformed change or a missing user or system id
   * @throws {ConflictError} (`E_CONFLICT`) when the entity is not in the expected state: another
   *   version, a create of an existing entity, an update of a deleted one, or an old value that
   *   is not the one the log ends with
   */
  async trackChange<T>(
    change: TrackChangeInput<T>,
    options?: TrackChangeOptions,
  ): Promise<ChangeRecord<T>> {
    const checked = checkChange(change, options, {
      serializer: this.#serializer,
      ...(this.#systemId === undefined ? {} : { systemId: this.#systemId }),
    })
    const ctx = { log: this.#log, serializer: this.#serializer, maxRetries: this.#maxRetries }
    const record = (await appendChange(ctx, checked)) as ChangeRecord<T>
    this.#changed()
    return record
  }

  /** Wakes what follows the log (the relay, wherever it runs, and this tracker's streams). */
  #changed(): void {
    this.#transport?.notifyRelay()
    for (const stream of this.#streams) {
      if (stream.closed) this.#streams.delete(stream)
      else stream.nudge()
    }
  }

  /**
   * A change stream over this tracker's log (see {@link ChangeStream}): `subscribe` to follow
   * entities' changes, caught up from the log and then live. Changes this tracker logs reach
   * subscribers at once, as do the writes of a cache it tracks; others (other instances) within
   * `pollInterval`. Close it before closing the log.
   */
  changeStream(options: Omit<ChangeStreamOptions, 'log'> = {}): ChangeStream {
    const transport = this.#transport
    const stream = new ChangeStream({
      ...(transport ? { transport } : {}),
      ...options,
      log: this.#log,
    })
    this.#streams.add(stream)
    return stream
  }

  /**
   * Automatic tracking for a `TieredCache` (pass it as its `tracking` option): every write and
   * delete of these namespaces is logged with its old and new value, by the store of record in
   * the same transaction as the write. Each needs an author: the call's `userId`/`systemId`
   * options, else the enclosing {@link trackAs}, else (system only) this tracker's `systemId`;
   * a write without one is refused before any I/O. Use the log the record writes to
   * (`ac_state_changes` of the same database) as this tracker's log. Give options by name
   * (`{ primary_core: { conflicts: { merge: { gold: 'counter' } } } }`) to resolve conflicting
   * compare-and-sets by a policy instead of failing them.
   * @throws {InvalidOptionError} for an empty or malformed list
   */
  writeTracking(namespaces: TrackedNamespaces): WriteTracking {
    return createWriteTracking(namespaces, {
      log: this.#log,
      serializer: this.#serializer,
      ...(this.#systemId === undefined ? {} : { systemId: this.#systemId }),
      onLogged: () => this.#changed(),
    })
  }

  /** An entity's records in version order. */
  /**
   * An entity's records in version order; with `masked`, the `sensitiveFields` of their values
   * read `[REDACTED]` (for showing them; verify and roll back on unmasked records).
   */
  async history(
    entityType: string,
    entityId: string,
    options: { masked?: boolean } = {},
  ): Promise<ChangeRecord[]> {
    const type = validateNamespace(entityType)
    const records = await this.#log.history(type, validateKey(entityId, type))
    return options.masked === true ? records.map((r) => maskRecord(r, this.#sensitive)) : records
  }

  /**
   * Records matching `query` (entity, user, system, change type, time range), oldest first, one
   * page at a time: pass `nextCursor` back as `cursor`. With `masked`, sensitive fields read
   * `[REDACTED]`.
   */
  async query(query: ChangeQuery, options: { masked?: boolean } = {}): Promise<ChangePage> {
    validateLimit(query?.limit)
    const page = await this.#log.query(query)
    if (options.masked !== true) return page
    return { ...page, records: page.records.map((r) => maskRecord(r, this.#sensitive)) }
  }

  /**
   * Every record matching `query` as JSON lines (no trailing newline), sensitive fields masked,
   * read page by page. Masked values no longer hash as logged: verify chains on the log itself.
   */
  exportJsonLines(
    query: Omit<ChangeQuery, 'cursor'> = {},
  ): AsyncGenerator<string, void, undefined> {
    validateLimit(query.limit)
    const ctx = { log: this.#log, serializer: this.#serializer, sensitiveFields: this.#sensitive }
    return exportLines(ctx, query)
  }

  /**
   * Verifies an entity's chain (see {@link ChainVerification} for what is checked) and, given
   * the entity as stored, that no write bypassed the log.
   */
  async verify(
    entityType: string,
    entityId: string,
    options: { stored?: StoredState } = {},
  ): Promise<ChainVerification> {
    const records = await this.history(entityType, entityId)
    return verifyChain(entityType, entityId, records, this.#serializer, options.stored)
  }

  /**
   * The entity's state at a version or a time: a replay of its log from version 1.
   * @throws {InvalidOptionError} for a malformed point, or a version past the newest
   */
  async getStateAt<T = unknown>(
    entityType: string,
    entityId: string,
    at: PointInTime,
  ): Promise<EntityStateAt<T>> {
    const point = checkPoint(at)
    return replayTo(await this.history(entityType, entityId), point) as EntityStateAt<T>
  }

  /**
   * Rolls an entity back to a version, to a time, or undoes one change, as an ordinary new change
   * written through `options.writer` (the entity type's namespace of a cache that tracks it):
   * the same compare-and-set against the entity's newest version, the same chain, every tier and
   * instance. History is never edited. Rolling back to a state where the entity did not exist
   * deletes it; rolling back a delete re-creates it. An undo reverts only the fields the change
   * set, where nobody changed them since; otherwise it fails with `UndoConflictError`
   * (`E_UNDO_CONFLICT`) naming them, unless `force`.
   * @throws {ConflictError} when another write lands between reading the log and writing
   */
  async rollback<V = unknown>(
    entityType: string,
    entityId: string,
    target: RollbackTarget,
    options: RollbackOptions<V>,
  ): Promise<RollbackResult> {
    const checked = checkTarget(target)
    const writer = options?.writer as Partial<RollbackOptions['writer']> | undefined
    if (typeof writer?.set !== 'function' || typeof writer.delete !== 'function') {
      throw new InvalidOptionError(
        'writer',
        "must be the entity type's cache namespace (with set and delete)",
      )
    }
    const history = await this.history(entityType, entityId)
    const state = rollbackState(history, checked, options.force === true, this.#serializer)
    return writeRollback(
      entityId,
      history.at(-1),
      state,
      options as RollbackOptions,
      this.#serializer,
    )
  }

  /** Reads the whole log and digests every entity's head (signed with `checkpointKey` if set). */
  async checkpoint(options: LogScanOptions = {}): Promise<ChainCheckpoint> {
    return takeCheckpoint(this.#log, {
      ...this.#scan(options),
      ...(this.#key ? { key: this.#key } : {}),
    })
  }

  /**
   * Verifies the log up to a checkpoint: nothing before it deleted, inserted or rewritten (and,
   * with `checkpointKey`, the checkpoint itself not forged). Verify each entity's chain with
   * {@link verify} for the records after it.
   */
  async verifyCheckpoint(
    checkpoint: ChainCheckpoint,
    options: LogScanOptions = {},
  ): Promise<CheckpointVerification> {
    return verifyAgainst(this.#log, checkpoint, {
      ...this.#scan(options),
      ...(this.#key ? { key: this.#key } : {}),
    })
  }

  #scan(options: LogScanOptions): { batch: number; onProgress?: ProgressListener } {
    const batch = validateLimit(options.batch, 1000)
    return { batch, ...(options.onProgress ? { onProgress: options.onProgress } : {}) }
  }
}

/** Creates a {@link StateTracker} over a change log. */
export function createStateTracker(options: StateTrackerOptions): StateTracker {
  return new StateTracker(options)
}
