import {
  type AppendResult,
  type ChangeRecord,
  InvalidOptionError,
  jsonSerializer,
  type Serializer,
  type SetManyItem,
  type SetResult,
} from '@actor-cache/core'
import { isVersionTaken, versionConflict } from './change-conflict.js'
import { insertChanges, prepareChanges } from './change-log.js'
import { findRejected, isStatementError } from './rejected-rows.js'
import { type Prepared, prepareWrite } from './row-codec.js'
import type { PrismaTransaction } from './sql.js'
import { byKey, publishSet, type StoreScope } from './store-scope.js'
import { upsert } from './upsert.js'
import { bar } from './version-sql.js'

/** Validates and encodes a batch; `items` must be an array. */
function prepareBatch(scope: StoreScope, items: readonly SetManyItem<unknown>[]): Prepared[] {
  if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
  return items.map((item) => prepareWrite(scope, item.key, item.value, item))
}

/** Whether a batch can be one statement: distinct keys, each with an explicit version. */
function oneStatement(prepared: readonly Prepared[]): boolean {
  return (
    new Set(prepared.map((p) => p.key)).size === prepared.length &&
    prepared.every((p) => p.opts.version !== undefined)
  )
}

/**
 * The writes of a batch, one statement when {@link oneStatement} allows it, else in order inside
 * one transaction. Either way all or nothing; a batch the database refuses fails with
 * `WriteRejectedError` naming the rows it refuses.
 */
export async function writeMany(
  scope: StoreScope,
  items: readonly SetManyItem<unknown>[],
): Promise<SetResult[]> {
  const prepared = prepareBatch(scope, items)
  if (prepared.length === 0) return []
  if (oneStatement(prepared)) {
    try {
      return await scope.owner._run('setMany', (db) => batchUpsert(scope, db, prepared))
    } catch (error) {
      if (!isStatementError(error)) throw error
      // The database refused the batch: find out which rows, report them, write nothing.
      throw await findRejected(
        {
          namespace: scope.namespace,
          transaction: (fn, statements) => scope.owner._transaction('setMany', fn, { statements }),
          write: (tx, p) => upsert(scope, tx, p),
        },
        prepared,
        error,
      )
    }
  }
  return scope.owner._transaction('setMany', async (tx) => {
    const out: SetResult[] = []
    for (const p of prepared) out.push(await upsert(scope, tx, p))
    return out
  })
}

/**
 * The writes of a batch and the state changes that belong to it in one transaction: both land or
 * neither does (a change for an entity version already logged rolls the writes back with
 * `ConflictError` naming it).
 */
export async function writeManyWithChanges(
  scope: StoreScope,
  items: readonly SetManyItem<unknown>[],
  changes: readonly ChangeRecord[],
  serializer: Serializer = jsonSerializer,
): Promise<{ results: SetResult[]; changes: AppendResult }> {
  const prepared = prepareBatch(scope, items)
  const columns = prepareChanges(changes, serializer)
  const batch = oneStatement(prepared)
  try {
    return await scope.owner._transaction('setManyWithChanges', async (tx) => {
      let results: SetResult[] = []
      if (prepared.length > 0 && batch) results = await batchUpsert(scope, tx, prepared)
      else for (const p of prepared) results.push(await upsert(scope, tx, p))
      const logged =
        columns.length === 0
          ? { appended: 0, duplicates: 0 }
          : await insertChanges(tx, changes, columns)
      return { results, changes: logged }
    })
  } catch (error) {
    if (!isVersionTaken(error)) throw error
    // the transaction is gone: name the conflicting change with a query of its own
    throw await versionConflict(changes, error, (fn) => scope.owner._run('setManyWithChanges', fn))
  }
}

/** A batch of explicit-version writes with distinct keys, in one statement. */
async function batchUpsert(
  scope: StoreScope,
  db: PrismaTransaction,
  input: Prepared[],
): Promise<SetResult[]> {
  // Rows are locked in key order (see byKey); results come back in input order.
  const items = [...input].sort(byKey)
  // Tags cost a per-row array build: only when some item has tags.
  const tagged = items.some((p) => p.opts.tags.length > 0)
  const uniform = items.every((p) => p.encoding === (items[0] as Prepared).encoding)
  // Only the affected-row count comes back: the rows inserted or updated, i.e. the writes that
  // applied (parsing a row per item would cost as much as writing it). The rare batch where
  // some write lost to a newer version reads the stored versions afterwards.
  const count = await db.$executeRawUnsafe(
    `INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags)
     SELECT $1, key, value, ${uniform ? '$4' : 'encoding'}, version,
            to_timestamp(created_ms / 1000.0), to_timestamp(expires_ms / 1000.0),
            ${tagged ? 'ARRAY(SELECT jsonb_array_elements_text(tags_json::jsonb))' : `'{}'::text[]`}
       FROM UNNEST($2::text[], $3::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $10::text[])
         AS t(key, value, encoding, version, created_ms, expires_ms, tags_json)
     ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, encoding = EXCLUDED.encoding,
       version = EXCLUDED.version, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
       tags = EXCLUDED.tags, deleted = false, updated_at = now()
     WHERE ${bar('e', 9)} <= EXCLUDED.version`,
    scope.namespace,
    items.map((p) => p.key),
    items.map((p) => p.value),
    uniform ? (items[0] as Prepared).encoding : 't',
    uniform ? [] : items.map((p) => p.encoding),
    items.map((p) => String(p.opts.version)),
    // epoch ms as integers: cheaper to send and parse than timestamps
    items.map((p) => String(Math.round(p.opts.createdAt))),
    items.map((p) => (p.opts.expiresAt === null ? null : String(p.opts.expiresAt))),
    new Date(),
    tagged ? items.map((p) => JSON.stringify(p.opts.tags)) : [],
  )
  const stored =
    count < items.length ? await storedVersions(scope, db, items) : new Map<string, Stored>()
  return input.map((p) => {
    const version = p.opts.version as number
    const now = stored.get(p.key)
    const applied = now === undefined || (now.version === version && !now.deleted)
    publishSet(scope, p.key, applied)
    return { applied, version: now?.version ?? version }
  })
}

interface Stored {
  version: number
  deleted: boolean
}

/**
 * The stored version of each key after a batch where some write lost. Keys are distinct and a
 * lost write leaves a strictly newer version: a key applied iff its stored version is the one
 * written (and is not a tombstone).
 */
async function storedVersions(
  scope: StoreScope,
  db: PrismaTransaction,
  items: readonly Prepared[],
): Promise<Map<string, Stored>> {
  const rows = await db.$queryRawUnsafe<{ key: string; version: bigint; deleted: boolean }[]>(
    `SELECT key, version, deleted FROM ac_cache_entries WHERE namespace = $1 AND key = ANY($2::text[])`,
    scope.namespace,
    items.map((p) => p.key),
  )
  return new Map(rows.map((r) => [r.key, { version: Number(r.version), deleted: r.deleted }]))
}
