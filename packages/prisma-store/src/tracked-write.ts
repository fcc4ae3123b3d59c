/**
 * Tracked writes: an entity and its change record in one transaction. The entity's row is locked
 * and read with the database clock, the caller's builder makes the change record from that prior
 * state, and one statement writes the row at the record's version (naming the record in
 * `change_hash` and `change_at`) and appends the record, only when the row write applied.
 */
import {
  type ChangeBuilder,
  type ChangeRecord,
  ConflictError,
  InvalidOptionError,
  jsonSerializer,
  type PriorState,
  type Serializer,
  type SetOptions,
  type TrackedWrite,
  type TrackedWriteResult,
  validateKey,
} from '@actor-cache/core'
import { isVersionTaken, versionConflict } from './change-conflict.js'
import { changeInsert, prepareChanges } from './change-log.js'
import { COLUMNS, decodeRow, prepareWrite, type Row } from './row-codec.js'
import type { PrismaTransaction } from './sql.js'
import { publishDeleted, publishSet, type StoreScope, TIER } from './store-scope.js'
import { remember, rowParams, sawClock, tryFastPath } from './tracked-fast-path.js'
import { checkChain } from './tracked-record-check.js'

/** The row half of a tracked write, validated and encoded before any I/O. */
export interface RowWrite {
  kind: 'set' | 'delete'
  value: string
  encoding: 't' | 'b'
  createdAt: number
  expiresAt: number | null
  tags: readonly string[]
}

/** The entity's row as the locking read sees it: all null (but `now`) when there is none. */
export type PriorRow = { now: Date } & { [K in keyof Row]: Row[K] | null } & {
  deleted: boolean | null
  change_hash: string | null
  change_at: Date | null
  /** The entity's newest change record, read only when it has no row. */
  log_version: bigint | null
  log_hash: string | null
  log_at: Date | null
}

/** What the builder threw: carried through the transaction as it is, not taken for an outage. */
export class BuilderFailure extends Error {
  readonly thrown: unknown
  constructor(thrown: unknown) {
    super('the change builder threw')
    this.thrown = thrown
  }
}

/** Validates the write and encodes its value with the namespace's codec. */
export function prepareRowWrite(scope: StoreScope, key: string, write: TrackedWrite): RowWrite {
  validateKey(key, scope.namespace)
  if (write?.kind === 'delete') {
    return {
      kind: 'delete',
      value: '',
      encoding: 't',
      createdAt: Date.now(),
      expiresAt: null,
      tags: [],
    }
  }
  if (write?.kind !== 'set') {
    const kind = (write as { kind?: unknown } | undefined)?.kind
    throw new InvalidOptionError('write', `kind must be 'set' or 'delete', got ${String(kind)}`)
  }
  // only the options a tracked write may give: its version is the change record's
  const given = write.options ?? {}
  const options: SetOptions = {}
  if (given.ttl !== undefined) options.ttl = given.ttl
  if (given.expiresAt !== undefined) options.expiresAt = given.expiresAt
  if (given.tags !== undefined) options.tags = given.tags
  const p = prepareWrite(scope, key, write.value, options)
  return {
    kind: 'set',
    value: p.value,
    encoding: p.encoding,
    createdAt: p.opts.createdAt,
    expiresAt: p.opts.expiresAt,
    tags: p.opts.tags,
  }
}

/**
 * Locks the entity's row (when there is one) and reads it with the database clock, taken after
 * the lock: one statement. A tombstone and an expired row are absent but keep their version, so
 * the entity's versions never restart; with no row at all (removed by a plain delete or by
 * pruning), the entity's newest change record gives them.
 */
async function readPrior(
  scope: StoreScope,
  tx: PrismaTransaction,
  key: string,
): Promise<PriorState> {
  const rows = await tx.$queryRawUnsafe<PriorRow[]>(
    `SELECT clock_timestamp() AS now, r.*, h.version AS log_version, h.hash AS log_hash,
            h.timestamp AS log_at
       FROM (VALUES (1)) AS one(x)
       LEFT JOIN LATERAL (
         SELECT ${COLUMNS}, deleted, change_hash, change_at FROM ac_cache_entries
          WHERE namespace = $1 AND key = $2 FOR UPDATE) AS r ON true
       LEFT JOIN LATERAL (
         SELECT version, hash, timestamp FROM ac_state_changes
          WHERE r.key IS NULL AND entity_type = $1 AND entity_id = $2
          ORDER BY version DESC LIMIT 1) AS h ON true`,
    scope.namespace,
    key,
  )
  const row = rows[0]
  if (row === undefined) throw new Error('writeWithChange: the database returned no row')
  return priorOf(scope, row)
}

/** The prior state of an entity from its locking read's row. */
export function priorOf(scope: StoreScope, row: PriorRow): PriorState {
  const now = row.now.getTime()
  sawClock(scope, now)
  const exists =
    row.version !== null &&
    row.deleted === false &&
    (row.expires_at === null || row.expires_at.getTime() > now)
  const logged = row.version === null && row.log_version !== null
  const prior: PriorState = logged
    ? {
        exists,
        version: Number(row.log_version),
        headHash: row.log_hash,
        headTime: row.log_at?.getTime() ?? 0,
        now,
      }
    : {
        exists,
        version: row.version === null ? 0 : Number(row.version),
        headHash: row.change_hash,
        headTime: row.change_at === null ? 0 : row.change_at.getTime(),
        now,
      }
  if (exists) prior.value = decodeRow(scope, row as Row).value
  return prior
}

/** Runs the builder; what it throws comes out of the transaction unchanged. */
export function runBuilder(build: ChangeBuilder, prior: PriorState): ChangeRecord | undefined {
  try {
    return build(prior)
  } catch (error) {
    throw new BuilderFailure(error)
  }
}

/**
 * The row write and the record's insert, one statement. Parameters: `$1`-`$12` the record's
 * columns (see `changeInsert`), then the row's. The row is written only when its version is still
 * the prior one (when there was no row, only when none appeared meanwhile: versions start at 1);
 * the record is inserted only when the row was written.
 */
const WRITE = `WITH up AS (
    INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at,
      expires_at, tags, deleted, change_hash, change_at)
    VALUES ($13, $14, $15, $16, $17::bigint, $18::timestamptz, $19::timestamptz, $20::text[],
      $21::boolean, $22, $23::timestamptz)
    ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, encoding = EXCLUDED.encoding,
      version = EXCLUDED.version, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
      tags = EXCLUDED.tags, deleted = EXCLUDED.deleted, change_hash = EXCLUDED.change_hash,
      change_at = EXCLUDED.change_at, updated_at = now()
    WHERE e.version = $24::bigint
    RETURNING e.version
  ), logged AS (${changeInsert('EXISTS (SELECT 1 FROM up)')})
  SELECT (SELECT count(*) FROM up) AS written, (SELECT seq FROM logged) AS seq`

interface Written {
  written: bigint
  seq: bigint | null
}

/** Writes the row and the record (see {@link WRITE}); returns the record's `seq`. */
async function writeBoth(
  scope: StoreScope,
  tx: PrismaTransaction,
  key: string,
  w: RowWrite,
  record: ChangeRecord,
  columns: unknown[][],
  prior: PriorState,
): Promise<number> {
  const rows = await tx.$queryRawUnsafe<Written[]>(
    WRITE,
    ...columns,
    ...rowParams(scope, key, w, record),
    String(prior.version),
  )
  const row = rows[0]
  if (Number(row?.written ?? 0) === 0) throw await lostRow(scope, tx, key, prior)
  if (row?.seq === null || row?.seq === undefined)
    throw await takenId(scope, tx, key, record, prior)
  return Number(row.seq)
}

/** The conflict of a write whose row another writer created since the locking read found none. */
async function lostRow(
  scope: StoreScope,
  tx: PrismaTransaction,
  key: string,
  prior: PriorState,
): Promise<ConflictError> {
  // a statement of its own: the write's snapshot predates the row it lost to
  const rows = await tx.$queryRawUnsafe<{ version: bigint }[]>(
    'SELECT version FROM ac_cache_entries WHERE namespace = $1 AND key = $2',
    scope.namespace,
    key,
  )
  return new ConflictError(prior.version, Number(rows[0]?.version ?? 0), {
    tier: TIER,
    namespace: scope.namespace,
    key,
  })
}

/** The conflict of a record whose change id is logged already (the row write is rolled back). */
async function takenId(
  scope: StoreScope,
  tx: PrismaTransaction,
  key: string,
  record: ChangeRecord,
  prior: PriorState,
): Promise<ConflictError> {
  const rows = await tx.$queryRawUnsafe<
    { entity_type: string; entity_id: string; version: bigint }[]
  >('SELECT entity_type, entity_id, version FROM ac_state_changes WHERE id = $1', record.id)
  const holder = rows[0]
  const where =
    holder === undefined
      ? ''
      : ` for version ${holder.version} of ${holder.entity_type} ${JSON.stringify(holder.entity_id)}`
  return new ConflictError(prior.version, prior.version, {
    tier: TIER,
    namespace: scope.namespace,
    key,
    message:
      `conflict: change id ${JSON.stringify(record.id)} is logged already${where}; neither ` +
      `${scope.namespace} ${JSON.stringify(key)} nor its change was written`,
  })
}

/**
 * Writes an entity and appends its change record in one transaction: both or neither. See
 * `ChangeRecordingStore.writeWithChange` in core.
 */
export async function writeWithChange(
  scope: StoreScope,
  key: string,
  write: TrackedWrite,
  build: ChangeBuilder,
  serializer: Serializer = jsonSerializer,
): Promise<TrackedWriteResult> {
  const w = prepareRowWrite(scope, key, write)
  const fast = await tryFastPath(scope, key, w, build, serializer)
  if (fast !== undefined) {
    if (w.kind === 'set') publishSet(scope, key, true)
    else publishDeleted(scope, fast.oldValue === null ? 0 : 1)
    return { version: fast.version, change: fast }
  }
  let record: ChangeRecord | undefined
  try {
    const result = await scope.owner._transaction(
      'writeWithChange',
      async (tx) => {
        const prior = await readPrior(scope, tx, key)
        const built = runBuilder(build, prior)
        // nothing to change (a delete of an absent entity): nothing is written
        if (built === undefined) return { version: prior.version, existed: prior.exists }
        const columns = prepareChanges([built], serializer)
        checkChain(scope, key, w.kind, prior, built)
        record = built
        const seq = await writeBoth(scope, tx, key, w, built, columns, prior)
        remember(scope, key, w, built)
        const change: ChangeRecord = { ...built, seq }
        return { version: built.version, change, existed: prior.exists }
      },
      { statements: 3 },
    )
    const applied = result.change !== undefined
    if (w.kind === 'set') publishSet(scope, key, applied)
    else publishDeleted(scope, applied && result.existed ? 1 : 0)
    return applied
      ? { version: result.version, change: result.change }
      : { version: result.version }
  } catch (error) {
    if (error instanceof BuilderFailure) throw error.thrown
    if (record === undefined || !isVersionTaken(error)) throw error
    // the transaction is gone: name the change holding the version with a query of its own
    throw await versionConflict([record], error, (fn) => scope.owner._run('writeWithChange', fn))
  }
}
