import {
  type AppendResult,
  type ChangeFeedBatch,
  type ChangeHead,
  type ChangeLog,
  type ChangePage,
  type ChangeQuery,
  type ChangeRecord,
  InvalidOptionError,
  jsonSerializer,
  type Serializer,
  validateLimit,
} from '@actor-cache/core'
import { conflictInBatch, isVersionTaken, versionConflict } from './change-conflict.js'
import { guarded, type PrismaLike, type PrismaTransaction } from './sql.js'

/** Options of {@link createPrismaChangeLog}. */
export interface PrismaChangeLogOptions {
  prisma: PrismaLike
  /** Serializer of old and new values. @default jsonSerializer */
  serializer?: Serializer
  /** Longest any operation may take, in ms. @default 5000 */
  timeout?: number
}

interface ChangeRow {
  seq: bigint
  id: string
  entity_type: string
  entity_id: string
  change_type: ChangeRecord['changeType']
  old_value: string | null
  new_value: string | null
  timestamp: Date
  user_id: string
  system_id: string
  version: bigint
  txid: string
  hash: string | null
  prev_hash: string | null
}

const COLUMNS = `seq, id, entity_type, entity_id, change_type, old_value, new_value, timestamp, user_id,
  system_id, version, txid::text AS txid, hash, prev_hash`
const CHANGE_TYPES = new Set(['create', 'update', 'delete'])

function checkRecord(r: ChangeRecord): void {
  const fail = (field: string, what: string): never => {
    throw new InvalidOptionError(field, `${what} (change ${JSON.stringify(r?.id)})`)
  }
  if (typeof r !== 'object' || r === null) fail('record', 'must be an object')
  if (typeof r.id !== 'string' || r.id.length === 0 || r.id.length > 200)
    fail('id', 'must be a non-empty string')
  if (typeof r.entityType !== 'string' || r.entityType.length === 0)
    fail('entityType', 'must be a non-empty string')
  if (typeof r.entityId !== 'string' || r.entityId.length === 0)
    fail('entityId', 'must be a non-empty string')
  if (!CHANGE_TYPES.has(r.changeType)) fail('changeType', 'must be create, update or delete')
  if (!Number.isSafeInteger(r.version) || r.version < 1)
    fail('version', 'must be a positive safe integer')
  if (typeof r.timestamp !== 'number' || !Number.isFinite(r.timestamp))
    fail('timestamp', 'must be epoch milliseconds')
  if (typeof r.userId !== 'string') fail('userId', 'must be a string')
  if (typeof r.systemId !== 'string') fail('systemId', 'must be a string')
}

/** Validates and serializes change records into the columns of one UNNEST insert. */
export function prepareChanges(
  records: readonly ChangeRecord[],
  serializer: Serializer,
): unknown[][] {
  if (!Array.isArray(records)) throw new InvalidOptionError('records', 'must be an array')
  for (const r of records) checkRecord(r)
  if (records.length === 0) return []
  const inBatch = conflictInBatch(records)
  if (inBatch !== undefined) throw inBatch
  const encode = (v: unknown): string | null =>
    v === null || v === undefined ? null : serializer.serialize(v)
  return [
    records.map((r) => r.id),
    records.map((r) => r.entityType),
    records.map((r) => r.entityId),
    records.map((r) => r.changeType),
    records.map((r) => encode(r.oldValue)),
    records.map((r) => encode(r.newValue)),
    records.map((r) => new Date(r.timestamp)),
    records.map((r) => r.userId),
    records.map((r) => r.systemId),
    records.map((r) => String(r.version)),
    records.map((r) => r.hash ?? null),
    records.map((r) => r.prevHash ?? null),
  ]
}

/**
 * The INSERT of prepared change records (the columns of {@link prepareChanges} as `$1` to `$12`),
 * returning the `seq` of each record inserted. `when`, an SQL condition, gates it: nothing is
 * inserted unless it holds. A change id logged already is skipped (idempotent retries), or, with
 * `duplicates: 'fail'`, fails the statement like a taken version does.
 */
export function changeInsert(
  when?: string,
  options: { duplicates?: 'skip' | 'fail' } = {},
): string {
  return `INSERT INTO ac_state_changes (id, entity_type, entity_id, change_type, old_value, new_value,
         timestamp, user_id, system_id, version, hash, prev_hash)
       SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::timestamptz[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[])
       ${when === undefined ? '' : `WHERE ${when}`}
       ${options.duplicates === 'fail' ? '' : 'ON CONFLICT (id) DO NOTHING'}
       RETURNING seq`
}

/**
 * Inserts prepared change records in one statement (idempotent by id). Runs on a client or inside
 * a transaction. A taken entity version fails with the database's error: see
 * `isVersionTaken` and `versionConflict`, which need a client outside the failed transaction.
 */
export async function insertChanges(
  db: PrismaTransaction,
  records: readonly ChangeRecord[],
  columns: unknown[][],
): Promise<AppendResult> {
  const rows = await db.$queryRawUnsafe<{ n: bigint }[]>(
    `WITH ins AS (${changeInsert()})
     SELECT count(*) AS n FROM ins`,
    ...columns,
  )
  const appended = Number(rows[0]?.n ?? 0)
  return { appended, duplicates: records.length - appended }
}

/**
 * The audit trail in `ac_state_changes`: append-only, idempotent by change id, one record per
 * entity version, queries with keyset pagination, and an ordered feed that never skips a change
 * committed late: it reads only below the oldest running transaction
 * (`txid < pg_snapshot_xmin(pg_current_snapshot())`) and checkpoints on `(txid, seq)`, so a
 * sequence number taken by a transaction that commits later (or rolls back) cannot be jumped.
 */
export class PrismaChangeLog implements ChangeLog {
  readonly #prisma: PrismaLike
  readonly #serializer: Serializer
  readonly #timeout: number

  constructor(options: PrismaChangeLogOptions) {
    if (typeof options?.prisma?.$queryRawUnsafe !== 'function') {
      throw new InvalidOptionError('prisma', 'must be a PrismaClient')
    }
    this.#prisma = options.prisma
    this.#serializer = options.serializer ?? jsonSerializer
    this.#timeout = options.timeout ?? 5000
  }

  /**
   * Appends `records` in one statement, all or none. A change id already logged counts as a
   * duplicate (a retry).
   * @throws {ConflictError} when a record's entity version is held by another change id, in the
   *   log or in the same batch; the message names the version, the entity and both changes
   */
  async append(records: readonly ChangeRecord[]): Promise<AppendResult> {
    const prepared = prepareChanges(records, this.#serializer)
    if (prepared.length === 0) return { appended: 0, duplicates: 0 }
    try {
      return await guarded(this.#timeout, 'append', () =>
        insertChanges(this.#prisma, records, prepared),
      )
    } catch (error) {
      if (!isVersionTaken(error)) throw error
      throw await versionConflict(records, error, (fn) =>
        guarded(this.#timeout, 'append', () => fn(this.#prisma)),
      )
    }
  }

  async query(query: ChangeQuery): Promise<ChangePage> {
    const limit = validateLimit(query.limit)
    const where: string[] = []
    const params: unknown[] = []
    const add = (sql: string, value: unknown): void => {
      params.push(value)
      where.push(sql.replace('?', `$${params.length}`))
    }
    if (query.id !== undefined) add('id = ?', query.id)
    if (query.entityType !== undefined) add('entity_type = ?', query.entityType)
    if (query.entityId !== undefined) add('entity_id = ?', query.entityId)
    if (query.userId !== undefined) add('user_id = ?', query.userId)
    if (query.systemId !== undefined) add('system_id = ?', query.systemId)
    if (query.changeType !== undefined) add('change_type = ?', query.changeType)
    if (query.from !== undefined) add('timestamp >= ?', new Date(query.from))
    if (query.to !== undefined) add('timestamp < ?', new Date(query.to))
    if (query.cursor !== undefined) {
      if (!/^\d{1,19}$/.test(query.cursor)) {
        throw new InvalidOptionError(
          'cursor',
          `is not a cursor this log issued: ${JSON.stringify(query.cursor)}`,
        )
      }
      add('seq > ?::bigint', query.cursor)
    }
    params.push(limit + 1)
    const rows = await guarded(this.#timeout, 'query', () =>
      this.#prisma.$queryRawUnsafe<ChangeRow[]>(
        `SELECT ${COLUMNS} FROM ac_state_changes ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY seq LIMIT $${params.length}`,
        ...params,
      ),
    )
    const page = rows.slice(0, limit).map((r) => this.#record(r))
    const last = rows[limit - 1]
    return rows.length > limit && last
      ? { records: page, nextCursor: String(last.seq) }
      : { records: page }
  }

  async history(entityType: string, entityId: string): Promise<ChangeRecord[]> {
    const rows = await guarded(this.#timeout, 'history', () =>
      this.#prisma.$queryRawUnsafe<ChangeRow[]>(
        `SELECT ${COLUMNS} FROM ac_state_changes WHERE entity_type = $1 AND entity_id = $2 ORDER BY version`,
        entityType,
        entityId,
      ),
    )
    return rows.map((r) => this.#record(r))
  }

  /** The entity's newest record and the database clock, in one statement. */
  async head(entityType: string, entityId: string): Promise<ChangeHead> {
    const rows = await guarded(this.#timeout, 'head', () =>
      this.#prisma.$queryRawUnsafe<(Partial<ChangeRow> & { now: Date })[]>(
        `SELECT c.*, clock.now FROM (SELECT clock_timestamp() AS now) clock
           LEFT JOIN LATERAL (SELECT ${COLUMNS} FROM ac_state_changes
             WHERE entity_type = $1 AND entity_id = $2 ORDER BY version DESC LIMIT 1) c ON true`,
        entityType,
        entityId,
      ),
    )
    const row = rows[0]
    if (row === undefined) throw new Error('head: the database returned no row')
    const now = row.now.getTime()
    return row.seq === null || row.seq === undefined
      ? { now }
      : { record: this.#record(row as ChangeRow), now }
  }

  async readFeed(checkpoint: string | undefined, limit: number): Promise<ChangeFeedBatch> {
    const n = validateLimit(limit)
    let txid = '0'
    let seq = '0'
    if (checkpoint !== undefined) {
      const m = /^(\d{1,20}):(\d{1,19})$/.exec(checkpoint)
      if (!m)
        throw new InvalidOptionError(
          'checkpoint',
          `is not a checkpoint this log issued: ${JSON.stringify(checkpoint)}`,
        )
      txid = m[1] as string
      seq = m[2] as string
    }
    // ORDER BY names the table's columns: a bare `txid` would be the text output column, which
    // sorts 1000 before 999 and would let a page's checkpoint jump over changes
    const rows = await guarded(this.#timeout, 'readFeed', () =>
      this.#prisma.$queryRawUnsafe<ChangeRow[]>(
        `SELECT ${COLUMNS} FROM ac_state_changes
          WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
            AND (txid, seq) > ($1::text::xid8, $2::bigint)
          ORDER BY ac_state_changes.txid, ac_state_changes.seq LIMIT $3`,
        txid,
        seq,
        n,
      ),
    )
    const last = rows.at(-1)
    return {
      records: rows.map((r) => this.#record(r)),
      checkpoint: last ? `${last.txid}:${last.seq}` : (checkpoint ?? '0:0'),
    }
  }

  /** The feed's end: the newest (txid, seq) below the oldest transaction still running. */
  async feedEnd(): Promise<string> {
    const rows = await guarded(this.#timeout, 'feedEnd', () =>
      this.#prisma.$queryRawUnsafe<{ txid: string; seq: bigint | number }[]>(
        `SELECT txid::text AS txid, seq FROM ac_state_changes
          WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY ac_state_changes.txid DESC, ac_state_changes.seq DESC LIMIT 1`,
      ),
    )
    const last = rows[0]
    return last ? `${last.txid}:${String(last.seq)}` : '0:0'
  }

  #record(r: ChangeRow): ChangeRecord {
    const decode = (v: string | null): unknown =>
      v === null ? null : this.#serializer.deserialize(v)
    return {
      id: r.id,
      entityType: r.entity_type,
      entityId: r.entity_id,
      changeType: r.change_type,
      oldValue: decode(r.old_value),
      newValue: decode(r.new_value),
      timestamp: r.timestamp.getTime(),
      userId: r.user_id,
      systemId: r.system_id,
      version: Number(r.version),
      seq: Number(r.seq),
      ...(r.hash === null ? {} : { hash: r.hash }),
      ...(r.prev_hash === null ? {} : { prevHash: r.prev_hash }),
    }
  }
}

/** Creates the Postgres {@link ChangeLog}. Run `migrate` once first. */
export function createPrismaChangeLog(options: PrismaChangeLogOptions): PrismaChangeLog {
  return new PrismaChangeLog(options)
}
