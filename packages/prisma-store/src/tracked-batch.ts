/**
 * Tracked batches: the queued writes of tracked entities (write-behind) and their change records
 * in one transaction of two statements. Each entity is locked and read once (the first); its
 * writes are built in version order, each from the state the previous one left; the second writes
 * every entity's final row and appends all the records.
 */
import {
  type ChangeRecord,
  ConflictError,
  InvalidOptionError,
  jsonSerializer,
  type PriorState,
  type Serializer,
  type TrackedBatchItem,
  type TrackedBatchResult,
} from '@actor-cache/core'
import { isVersionTaken, versionConflict } from './change-conflict.js'
import { changeInsert, prepareChanges } from './change-log.js'
import { COLUMNS } from './row-codec.js'
import type { PrismaTransaction } from './sql.js'
import { publishSet, type StoreScope, TIER } from './store-scope.js'
import { remember } from './tracked-fast-path.js'
import { checkChain } from './tracked-record-check.js'
import {
  BuilderFailure,
  type PriorRow,
  prepareRowWrite,
  priorOf,
  type RowWrite,
  runBuilder,
} from './tracked-write.js'

interface Entry {
  index: number
  item: TrackedBatchItem<unknown>
  row: RowWrite
}

/** What one entity's writes came to: its records and the row its last written write leaves. */
interface EntityPlan {
  key: string
  prior: PriorState
  records: ChangeRecord[]
  last: RowWrite | undefined
}

/** Locks and reads the prior state of `keys` (sorted: locks are taken in key order), one statement. */
async function readPriors(
  scope: StoreScope,
  tx: PrismaTransaction,
  keys: readonly string[],
): Promise<Map<string, PriorState>> {
  const rows = await tx.$queryRawUnsafe<(PriorRow & { want: string })[]>(
    `SELECT clock_timestamp() AS now, k.want, r.*, h.version AS log_version, h.hash AS log_hash,
            h.timestamp AS log_at
       FROM UNNEST($2::text[]) WITH ORDINALITY AS k(want, n)
       LEFT JOIN LATERAL (
         SELECT ${COLUMNS}, deleted, change_hash, change_at FROM ac_cache_entries
          WHERE namespace = $1 AND key = k.want FOR UPDATE) AS r ON true
       LEFT JOIN LATERAL (
         SELECT version, hash, timestamp FROM ac_state_changes
          WHERE r.key IS NULL AND entity_type = $1 AND entity_id = k.want
          ORDER BY version DESC LIMIT 1) AS h ON true
      ORDER BY k.n`,
    scope.namespace,
    [...keys],
  )
  return new Map(rows.map((r) => [r.want, priorOf(scope, r)]))
}

/**
 * Builds one entity's writes (in version order) from its prior state; fills `results`. A write at
 * or below the stored version is `persisted`; one above the next version is a `gap`, with the rest
 * of the entity's writes. An `unused` version logs a record that changes nothing.
 */
function planEntity(
  scope: StoreScope,
  key: string,
  entries: Entry[],
  prior: PriorState,
  results: TrackedBatchResult[],
): EntityPlan {
  const plan: EntityPlan = { key, prior, records: [], last: undefined }
  let state = prior
  let gap = false
  for (const e of entries) {
    if (e.item.version <= state.version && !gap) {
      results[e.index] = { outcome: 'persisted', version: state.version }
      continue
    }
    if (gap || e.item.version > state.version + 1) {
      gap = true
      results[e.index] = { outcome: 'gap', version: state.version }
      continue
    }
    const record = runBuilder(e.item.build, state)
    if (record === undefined) {
      results[e.index] = { outcome: 'unchanged', version: state.version }
      continue
    }
    const row = e.item.unused === true ? rowOf(scope, key, state) : e.row
    checkChain(scope, key, row.kind, state, record)
    plan.records.push(record)
    plan.last = row
    results[e.index] = { outcome: 'written', version: record.version, change: record }
    state = {
      exists: row.kind === 'set',
      ...(row.kind === 'set'
        ? { value: e.item.unused === true ? state.value : writtenValue(e) }
        : {}),
      version: record.version,
      headHash: record.hash ?? null,
      headTime: record.timestamp,
      now: state.now,
    }
  }
  return plan
}

const writtenValue = (e: Entry): unknown => (e.item.write as { value: unknown }).value

/** The row an entity keeps through an unused version: its value as it is, or its tombstone. */
function rowOf(scope: StoreScope, key: string, state: PriorState): RowWrite {
  return prepareRowWrite(
    scope,
    key,
    state.exists ? { kind: 'set', value: state.value } : { kind: 'delete' },
  )
}

/**
 * The final rows of a batch's entities and all their records, one statement. Parameters: `$1`-`$12`
 * the records' columns (see `changeInsert`), `$13` namespace, then one array per row column. A
 * row is written only above its stored version (the entities are locked; an entity that had no
 * row to lock is guarded by the log's one record per version); the records are inserted only
 * when every row was.
 */
const WRITE_ROWS = `WITH up AS (
    INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at,
      expires_at, tags, deleted, change_hash, change_at)
    SELECT $13, key, value, encoding, version, created_at, expires_at,
           ARRAY(SELECT jsonb_array_elements_text(tags_json::jsonb)), deleted, change_hash, change_at
      FROM UNNEST($14::text[], $15::text[], $16::text[], $17::bigint[], $18::timestamptz[],
                  $19::timestamptz[], $20::text[], $21::boolean[], $22::text[], $23::timestamptz[])
        AS t(key, value, encoding, version, created_at, expires_at, tags_json, deleted,
             change_hash, change_at)
    ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, encoding = EXCLUDED.encoding,
      version = EXCLUDED.version, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
      tags = EXCLUDED.tags, deleted = EXCLUDED.deleted, change_hash = EXCLUDED.change_hash,
      change_at = EXCLUDED.change_at, updated_at = now()
    WHERE e.version < EXCLUDED.version
    RETURNING e.version
  ), logged AS (${changeInsert('(SELECT count(*) FROM up) = $24')})
  SELECT (SELECT count(*) FROM up) AS written, (SELECT count(*) FROM logged) AS logged`

/** Writes the entities' final rows and appends their records (one statement). */
async function writeEntities(
  scope: StoreScope,
  tx: PrismaTransaction,
  plans: readonly EntityPlan[],
  serializer: Serializer,
): Promise<void> {
  const records = plans.flatMap((p) => p.records)
  const rows = plans.map((p) => ({
    key: p.key,
    w: p.last as RowWrite,
    r: p.records.at(-1) as ChangeRecord,
  }))
  const out = await tx.$queryRawUnsafe<{ written: bigint; logged: bigint }[]>(
    WRITE_ROWS,
    ...prepareChanges(records, serializer),
    scope.namespace,
    rows.map((x) => x.key),
    rows.map((x) => x.w.value),
    rows.map((x) => x.w.encoding),
    rows.map((x) => String(x.r.version)),
    rows.map((x) => new Date(x.w.createdAt)),
    rows.map((x) => (x.w.expiresAt === null ? null : new Date(x.w.expiresAt))),
    rows.map((x) => JSON.stringify(x.w.tags)),
    rows.map((x) => x.w.kind === 'delete'),
    rows.map((x) => x.r.hash ?? null),
    rows.map((x) => new Date(x.r.timestamp)),
    rows.length,
  )
  const written = Number(out[0]?.written ?? 0)
  const logged = Number(out[0]?.logged ?? 0)
  if (written !== rows.length) {
    throw new ConflictError(0, 0, {
      tier: TIER,
      namespace: scope.namespace,
      message: `conflict: ${rows.length - written} of the batch's ${scope.namespace} entities moved past their versions under the batch; nothing of it was written`,
    })
  }
  if (logged !== records.length) {
    // a change id logged already (a forged or reused one): nothing of the batch is kept
    throw new ConflictError(0, 0, {
      tier: TIER,
      namespace: scope.namespace,
      message: `conflict: ${records.length - logged} change id(s) of the batch are logged already; nothing of it was written`,
    })
  }
}

/** See `TrackedBatchStore.writeTrackedBatch` in core. */
export async function writeTrackedBatch(
  scope: StoreScope,
  items: readonly TrackedBatchItem<unknown>[],
  serializer: Serializer = jsonSerializer,
): Promise<TrackedBatchResult[]> {
  if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
  const byKey = new Map<string, Entry[]>()
  items.forEach((item, index) => {
    if (
      typeof item?.build !== 'function' ||
      !Number.isSafeInteger(item.version) ||
      item.version < 1
    ) {
      throw new InvalidOptionError(
        'items',
        'every item needs { key, version (from 1), write, build }',
      )
    }
    const write = item.unused === true ? ({ kind: 'delete' } as const) : item.write
    const entry = { index, item, row: prepareRowWrite(scope, item.key, write) }
    const list = byKey.get(item.key)
    if (list === undefined) byKey.set(item.key, [entry])
    else list.push(entry)
  })
  if (items.length === 0) return []
  for (const list of byKey.values()) list.sort((a, b) => a.item.version - b.item.version)
  const keys = [...byKey.keys()].sort()
  const results: TrackedBatchResult[] = new Array(items.length)
  const plans: EntityPlan[] = []
  try {
    await scope.owner._transaction(
      'writeTrackedBatch',
      async (tx) => {
        plans.length = 0
        const priors = await readPriors(scope, tx, keys)
        for (const key of keys) {
          const prior = priors.get(key) as PriorState
          const entries = byKey.get(key) as Entry[]
          const plan = planEntity(scope, key, entries, prior, results)
          if (plan.records.length > 0) plans.push(plan)
        }
        if (plans.length > 0) await writeEntities(scope, tx, plans, serializer)
      },
      { statements: 2 },
    )
  } catch (error) {
    if (error instanceof BuilderFailure) throw error.thrown
    const records = plans.flatMap((p) => p.records)
    if (records.length === 0 || !isVersionTaken(error)) throw error
    throw await versionConflict(records, error, (fn) => scope.owner._run('writeTrackedBatch', fn))
  }
  for (const plan of plans) {
    remember(scope, plan.key, plan.last as RowWrite, plan.records.at(-1) as ChangeRecord)
    publishSet(scope, plan.key, true)
  }
  return results
}
