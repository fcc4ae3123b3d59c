import { ConflictError, InvalidOptionError } from '../errors.js'

/** Kind of a state change. */
export type ChangeType = 'create' | 'update' | 'delete'

/** One change of an entity's state: who changed what, from which value to which. `timestamp` is epoch milliseconds. */
export interface StateChange<T = unknown> {
  /** Unique forever (client-generated); a retried append of the same id is a no-op. */
  id: string
  /** Entity type, e.g. `primary_core` (a cache namespace). */
  entityType: string
  /** Entity id, e.g. `actor:123` (a cache key). */
  entityId: string
  changeType: ChangeType
  /** Value before the change (`null` for create). */
  oldValue: T | null
  /** Value after the change (`null` for delete). */
  newValue: T | null
  /** When the change happened (epoch ms). */
  timestamp: number
  /** Who made the change. */
  userId: string
  /** Which system made the change. */
  systemId: string
}

/** A state change as logged: its fields plus its version and chain links. */
export interface ChangeRecord<T = unknown> extends StateChange<T> {
  /** Entity version this change produced; unique per (entityType, entityId). */
  version: number
  /** Hash of this record, chaining it to `prevHash` (tamper evidence), when tracked. */
  hash?: string
  /** Hash of the entity's previous record, when tracked. */
  prevHash?: string | null
  /** Position in the log, assigned by the log on append. */
  seq?: number
}

/** Filters of {@link ChangeLog.query}. All given fields must match. */
export interface ChangeQuery {
  /** The change with this id (at most one record matches). */
  id?: string
  entityType?: string
  entityId?: string
  userId?: string
  systemId?: string
  changeType?: ChangeType
  /** Earliest `timestamp`, inclusive (epoch ms). */
  from?: number
  /** Latest `timestamp`, exclusive (epoch ms). */
  to?: number
  /** Page size. @default 100 */
  limit?: number
  /** `nextCursor` of the previous page. */
  cursor?: string
}

/** One page of a query, oldest first. */
export interface ChangePage<T = unknown> {
  records: ChangeRecord<T>[]
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string
}

/** One batch of the ordered feed. */
export interface ChangeFeedBatch<T = unknown> {
  records: ChangeRecord<T>[]
  /** Opaque position to pass to the next `readFeed`. */
  checkpoint: string
}

/** What {@link ChangeLog.head} returns: an entity's newest record and the log's clock. */
export interface ChangeHead<T = unknown> {
  /** The entity's record of the highest version; absent when nothing is logged for it. */
  record?: ChangeRecord<T>
  /** The log's current time (epoch ms): the database clock for SQL logs. */
  now: number
}

/** Outcome of an append. */
export interface AppendResult {
  /** Records newly written. */
  appended: number
  /** Records whose id was already logged (idempotent retries). */
  duplicates: number
}

/**
 * Where state changes are persisted: the audit trail. Append-only; idempotent by change id;
 * one record per (entityType, entityId, version).
 */
export interface ChangeLog {
  /**
   * Appends records, all or none.
   * @throws {ConflictError} when another record already holds an (entityType, entityId, version)
   */
  append(records: readonly ChangeRecord[]): Promise<AppendResult>
  /** Records matching `query`, oldest first, paginated. */
  query(query: ChangeQuery): Promise<ChangePage>
  /** The records of one entity in version order (the chain to verify or roll back along). */
  history(entityType: string, entityId: string): Promise<ChangeRecord[]>
  /**
   * The entity's newest record (the head of its chain) and the log's clock, in one read: what a
   * writer needs to append the next version.
   */
  head(entityType: string, entityId: string): Promise<ChangeHead>
  /**
   * The log after `checkpoint` (from the start when omitted), in an order fixed once read
   * (transaction-id order for SQL logs, which is not always commit order: two versions of one
   * entity written by different transactions may come out of order, so consumers apply them
   * by version). Never skips a record that commits later with an earlier position, never
   * delivers one twice.
   */
  readFeed(checkpoint: string | undefined, limit: number): Promise<ChangeFeedBatch>
  /**
   * A checkpoint after every record `readFeed` could return now, without reading them: where a
   * reader that wants only what comes next starts. Optional; without it a reader pages the
   * feed to its end.
   */
  feedEnd?(): Promise<string>
}

/** Validates a page size: an integer from 1 to 10,000. */
export function validateLimit(limit: unknown, fallback = 100): number {
  const n = limit ?? fallback
  if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > 10_000) {
    throw new InvalidOptionError(
      'limit',
      `must be an integer from 1 to 10000, got ${String(limit)}`,
    )
  }
  return n as number
}

const matches = (r: ChangeRecord, q: ChangeQuery): boolean =>
  (q.id === undefined || r.id === q.id) &&
  (q.entityType === undefined || r.entityType === q.entityType) &&
  (q.entityId === undefined || r.entityId === q.entityId) &&
  (q.userId === undefined || r.userId === q.userId) &&
  (q.systemId === undefined || r.systemId === q.systemId) &&
  (q.changeType === undefined || r.changeType === q.changeType) &&
  (q.from === undefined || r.timestamp >= q.from) &&
  (q.to === undefined || r.timestamp < q.to)

function parseCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0
  const n = Number(cursor)
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidOptionError(
      'cursor',
      `is not a cursor this log issued: ${JSON.stringify(cursor)}`,
    )
  }
  return n
}

/**
 * The conflict of an append whose entity version `holder` already has. `expectedVersion` is the
 * refused record's version minus one and `actualVersion` its version (found taken).
 */
function versionTaken(r: ChangeRecord, holder: string): ConflictError {
  return new ConflictError(r.version - 1, r.version, {
    namespace: r.entityType,
    key: r.entityId,
    message:
      `version conflict: version ${r.version} of ${r.entityType} ${JSON.stringify(r.entityId)} ` +
      `is taken by ${holder}; change ${JSON.stringify(r.id)} was not appended, nor anything ` +
      'else of its batch',
  })
}

/**
 * An in-process {@link ChangeLog}, for tests and single-node use. Records are kept in memory
 * (structured clones, so later mutation of the caller's objects does not alter history).
 */
export function createMemoryChangeLog(): ChangeLog {
  const records: ChangeRecord[] = []
  const byId = new Map<string, ChangeRecord>()
  const byVersion = new Map<string, string>()
  const versionKey = (r: ChangeRecord): string =>
    JSON.stringify([r.entityType, r.entityId, r.version])
  return {
    async append(batch) {
      const fresh: ChangeRecord[] = []
      const seen = new Map<string, string>()
      for (const r of batch) {
        if (!Number.isSafeInteger(r.version) || r.version < 1) {
          throw new InvalidOptionError(
            'version',
            `must be a positive safe integer, got ${String(r.version)}`,
          )
        }
        if (byId.has(r.id) || fresh.some((f) => f.id === r.id)) continue
        const vk = versionKey(r)
        const logged = byVersion.get(vk)
        const owner = logged ?? seen.get(vk)
        if (owner !== undefined) {
          throw versionTaken(
            r,
            `change ${JSON.stringify(owner)}${logged === undefined ? ' of the same batch' : ', already in the log'}`,
          )
        }
        seen.set(vk, r.id)
        fresh.push(r)
      }
      // Clone everything before storing anything: all or none.
      const copies = fresh.map((r) => structuredClone(r))
      for (const copy of copies) {
        const stored = { ...copy, seq: records.length + 1 }
        records.push(stored)
        byId.set(copy.id, stored)
        byVersion.set(versionKey(copy), copy.id)
      }
      return { appended: fresh.length, duplicates: batch.length - fresh.length }
    },
    async query(query) {
      const limit = validateLimit(query.limit)
      const start = parseCursor(query.cursor)
      const out: ChangeRecord[] = []
      let i = start
      for (; i < records.length && out.length < limit; i++) {
        const r = records[i] as ChangeRecord
        if (matches(r, query)) out.push(structuredClone(r))
      }
      const more = records.slice(i).some((r) => matches(r, query))
      return more ? { records: out, nextCursor: String(i) } : { records: out }
    },
    async history(entityType, entityId) {
      return records
        .filter((r) => r.entityType === entityType && r.entityId === entityId)
        .sort((a, b) => a.version - b.version)
        .map((r) => structuredClone(r))
    },
    async head(entityType, entityId) {
      let newest: ChangeRecord | undefined
      for (const r of records) {
        if (r.entityType !== entityType || r.entityId !== entityId) continue
        if (newest === undefined || r.version > newest.version) newest = r
      }
      return newest === undefined
        ? { now: Date.now() }
        : { record: structuredClone(newest), now: Date.now() }
    },
    async readFeed(checkpoint, limit) {
      const n = validateLimit(limit)
      const start = parseCursor(checkpoint)
      const out = records.slice(start, start + n).map((r) => structuredClone(r))
      return { records: out, checkpoint: String(start + out.length) }
    },
    async feedEnd() {
      return String(records.length)
    },
  }
}
