/**
 * Tracked batches: the queued writes of tracked entities (write-behind) and their change records
 * in one transaction. Each entity is locked and read once; its writes are built in version order,
 * each from the state the previous one left; one statement per entity writes its final row and
 * appends its records.
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
import { prepareChanges } from './change-log.js'
import { COLUMNS } from './row-codec.js'
import type { PrismaTransaction } from './sql.js'
import { publishSet, type StoreScope, TIER } from './store-scope.js'
import { remember, rowParams } from './tracked-fast-path.js'
import { checkChain } from './tracked-record-check.js'
import {
  BuilderFailure,
  type PriorRow,
  prepareRowWrite,
  priorOf,
  type RowWrite,
  runBuilder,
  writeStatement,
} from './tracked-write.js'

const WRITE_MANY = writeStatement('many')

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
 * or below the stored version is `persisted`; one above the next version is a `gap` (with the
 * rest of the entity's writes) unless `fillGaps`.
 */
function planEntity(
  scope: StoreScope,
  key: string,
  entries: Entry[],
  prior: PriorState,
  fillGaps: boolean,
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
    if (gap || (e.item.version > state.version + 1 && !fillGaps)) {
      gap = true
      results[e.index] = { outcome: 'gap', version: state.version }
      continue
    }
    const record = runBuilder(e.item.build, state)
    if (record === undefined) {
      results[e.index] = { outcome: 'unchanged', version: state.version }
      continue
    }
    checkChain(scope, key, e.row.kind, state, record)
    plan.records.push(record)
    plan.last = e.row
    results[e.index] = { outcome: 'written', version: record.version, change: record }
    state = {
      exists: e.row.kind === 'set',
      ...(e.row.kind === 'set' ? { value: (e.item.write as { value: unknown }).value } : {}),
      version: record.version,
      headHash: record.hash ?? null,
      headTime: record.timestamp,
      now: state.now,
    }
  }
  return plan
}

/** Writes one entity's final row and appends its records (one statement); false if the row moved. */
async function writeEntity(
  scope: StoreScope,
  tx: PrismaTransaction,
  plan: EntityPlan,
  serializer: Serializer,
): Promise<boolean> {
  const last = plan.records.at(-1) as ChangeRecord
  const rows = await tx.$queryRawUnsafe<{ written: bigint; seq: bigint | null }[]>(
    WRITE_MANY,
    ...prepareChanges(plan.records, serializer),
    ...rowParams(scope, plan.key, plan.last as RowWrite, last),
    String(plan.prior.version),
  )
  if (Number(rows[0]?.written ?? 0) === 0) return false
  const logged = Number(rows[0]?.seq ?? 0)
  if (logged !== plan.records.length) {
    // a change id logged already (the write of another entity, or a forged one): write nothing
    throw new ConflictError(plan.prior.version, plan.prior.version, {
      tier: TIER,
      namespace: scope.namespace,
      key: plan.key,
      message: `conflict: ${plan.records.length - logged} change id(s) of ${scope.namespace} ${JSON.stringify(plan.key)} are logged already; nothing of the batch was written`,
    })
  }
  return true
}

/** See `TrackedBatchStore.writeTrackedBatch` in core. */
export async function writeTrackedBatch(
  scope: StoreScope,
  items: readonly TrackedBatchItem<unknown>[],
  options: { fillGaps?: boolean },
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
    const entry = { index, item, row: prepareRowWrite(scope, item.key, item.write) }
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
          const plan = planEntity(
            scope,
            key,
            byKey.get(key) as Entry[],
            prior,
            options.fillGaps === true,
            results,
          )
          if (plan.records.length === 0) continue
          if (!(await writeEntity(scope, tx, plan, serializer))) {
            throw new Error(`${scope.namespace} ${JSON.stringify(key)} changed under its row lock`)
          }
          plans.push(plan)
        }
      },
      { statements: keys.length + 1 },
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
