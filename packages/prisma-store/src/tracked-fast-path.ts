/**
 * The fast path of tracked writes: an entity this process wrote last is written again in ONE
 * statement, without a transaction. The change record is built from the state this process left
 * (version, hash and time of the newest record, the value), and the statement writes the row and
 * appends the record only if the row is still exactly that state, with the database clock within
 * a second of the record's timestamp. Anything else (another writer came first, the builder
 * refuses the remembered state, a duplicate) falls back to the locking transaction.
 */
import {
  type ChangeBuilder,
  type ChangeRecord,
  jsonSerializer,
  type PriorState,
  type Serializer,
} from '@actor-cache/core'
import { changeInsert, prepareChanges } from './change-log.js'
import { sqlState } from './classify-error.js'
import { decodeRow, type Row } from './row-codec.js'
import type { StoreScope } from './store-scope.js'
import { checkChain } from './tracked-record-check.js'

/** The state this process left an entity in: enough to build its next record. */
export interface KnownHead {
  version: number
  hash: string
  time: number
  exists: boolean
  /** The row's value as written (decoded only when used). */
  value: string
  encoding: 't' | 'b'
  createdAt: number
  expiresAt: number | null
  tags: readonly string[]
}

/** How far the record's timestamp may be from the database clock on the fast path, in ms. */
export const CLOCK_TOLERANCE_MS = 1000

const MAX_KNOWN = 10_000

/** Entities of one namespace written last by this process, the least recently written dropped first. */
class KnownHeads {
  readonly #heads = new Map<string, KnownHead>()
  /** Database clock minus this process's clock, as the last locking read saw it. */
  offset = 0

  get(key: string): KnownHead | undefined {
    return this.#heads.get(key)
  }

  set(key: string, head: KnownHead): void {
    this.#heads.delete(key)
    this.#heads.set(key, head)
    if (this.#heads.size > MAX_KNOWN) {
      const oldest = this.#heads.keys().next().value
      if (oldest !== undefined) this.#heads.delete(oldest)
    }
  }

  forget(key: string): void {
    this.#heads.delete(key)
  }
}

const byOwner = new WeakMap<object, Map<string, KnownHeads>>()

/** The known heads of a namespace's store. */
export function knownHeads(scope: StoreScope): KnownHeads {
  let spaces = byOwner.get(scope.owner)
  if (spaces === undefined) {
    spaces = new Map()
    byOwner.set(scope.owner, spaces)
  }
  let heads = spaces.get(scope.namespace)
  if (heads === undefined) {
    heads = new KnownHeads()
    spaces.set(scope.namespace, heads)
  }
  return heads
}

/** The prior state a known head stands for, with the database clock estimated. */
function priorOf(scope: StoreScope, head: KnownHead, offset: number): PriorState {
  const now = Date.now() + offset
  const exists = head.exists && (head.expiresAt === null || head.expiresAt > now)
  const prior: PriorState = {
    exists,
    version: head.version,
    headHash: head.hash,
    headTime: head.time,
    now,
  }
  if (exists) {
    const row: Row = {
      key: '',
      value: head.value,
      encoding: head.encoding,
      version: head.version,
      created_at: new Date(head.createdAt),
      expires_at: head.expiresAt === null ? null : new Date(head.expiresAt),
      tags: [...head.tags],
    }
    prior.value = decodeRow(scope, row).value
  }
  return prior
}

/**
 * The row update and the record's insert, one statement, applied only when the row is still in
 * the known state and the clock agrees. A duplicate id or version fails the whole statement.
 */
const FAST_WRITE = `WITH up AS (
    UPDATE ac_cache_entries AS e SET value = $15, encoding = $16, version = $17::bigint,
      created_at = $18::timestamptz, expires_at = $19::timestamptz, tags = $20::text[],
      deleted = $21::boolean, change_hash = $22, change_at = $23::timestamptz, updated_at = now()
    WHERE e.namespace = $13 AND e.key = $14 AND e.version = $24::bigint
      AND e.change_hash = $25 AND e.deleted = $26::boolean
      AND abs(extract(epoch FROM clock_timestamp()) * 1000 - $27::double precision) <= ${CLOCK_TOLERANCE_MS}
    RETURNING e.version
  ), logged AS (${changeInsert('EXISTS (SELECT 1 FROM up)', { duplicates: 'fail' })})
  SELECT (SELECT count(*) FROM up) AS written, (SELECT seq FROM logged) AS seq`

/** The row half of a tracked write, as the fast path writes it. */
export interface FastRow {
  kind: 'set' | 'delete'
  value: string
  encoding: 't' | 'b'
  createdAt: number
  expiresAt: number | null
  tags: readonly string[]
}

/**
 * Tries the fast path. Returns the record written (with its `seq`), or `undefined` when the
 * locking transaction must run instead; nothing was written then.
 */
export async function tryFastPath(
  scope: StoreScope,
  key: string,
  w: FastRow,
  build: ChangeBuilder,
  serializer: Serializer = jsonSerializer,
): Promise<ChangeRecord | undefined> {
  const heads = knownHeads(scope)
  const head = heads.get(key)
  if (head === undefined) return undefined
  let record: ChangeRecord | undefined
  const prior = priorOf(scope, head, heads.offset)
  try {
    record = build(prior)
  } catch {
    return undefined // the builder refuses the remembered state: let it judge the real one
  }
  let columns: unknown[][]
  try {
    if (record === undefined) return undefined
    checkChain(scope, key, w.kind, prior, record)
    columns = prepareChanges([record], serializer)
  } catch {
    return undefined // the locking transaction reports it against the real state
  }
  const r = record
  let rows: { written: bigint; seq: bigint | null }[]
  try {
    rows = await scope.owner._run('writeWithChange', (db) =>
      db.$queryRawUnsafe(
        FAST_WRITE,
        ...columns,
        ...rowParams(scope, key, w, r),
        String(head.version),
        head.hash,
        !head.exists,
        r.timestamp,
      ),
    )
  } catch (error) {
    heads.forget(key)
    if (sqlState(error) === '23505') return undefined // a duplicate id or version: nothing written
    throw error
  }
  const row = rows[0]
  if (Number(row?.written ?? 0) === 0 || row?.seq === null || row?.seq === undefined) {
    heads.forget(key)
    return undefined
  }
  remember(scope, key, w, r)
  return { ...r, seq: Number(row.seq) }
}

/**
 * The row's parameters of a tracked write statement, after the record's `$1`-`$12`: `$13`
 * namespace, `$14` key, `$15` value, `$16` encoding, `$17` version, `$18` created, `$19`
 * expires, `$20` tags, `$21` deleted, `$22` the record's hash, `$23` its time.
 */
export function rowParams(scope: StoreScope, key: string, w: FastRow, r: ChangeRecord): unknown[] {
  return [
    scope.namespace,
    key,
    w.value,
    w.encoding,
    String(r.version),
    new Date(w.createdAt),
    w.expiresAt === null ? null : new Date(w.expiresAt),
    [...w.tags],
    w.kind === 'delete',
    r.hash,
    new Date(r.timestamp),
  ]
}

/** Remembers the state a tracked write left an entity in. */
export function remember(scope: StoreScope, key: string, w: FastRow, record: ChangeRecord): void {
  knownHeads(scope).set(key, {
    version: record.version,
    hash: record.hash as string,
    time: record.timestamp,
    exists: w.kind === 'set',
    value: w.value,
    encoding: w.encoding,
    createdAt: w.createdAt,
    expiresAt: w.expiresAt,
    tags: w.tags,
  })
}

/** Records the database clock a locking read saw, for the fast path's estimate. */
export function sawClock(scope: StoreScope, dbNow: number): void {
  knownHeads(scope).offset = dbNow - Date.now()
}
