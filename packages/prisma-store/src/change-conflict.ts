import { type ChangeRecord, ConflictError } from '@actor-cache/core'
import { classifyFailure, sqlState } from './classify-error.js'
import type { PrismaLike } from './sql.js'

/**
 * The `ConflictError` of a change-log append that holds an entity version already recorded by
 * another change: it names the refused change, the entity, the version and the change that has
 * it. `expectedVersion` is the refused record's version minus one and `actualVersion` its version
 * (found taken), as in core's in-process change log.
 */

/** A conflict inside the batch itself: two changes (different ids) for one entity version. */
export function conflictInBatch(records: readonly ChangeRecord[]): ConflictError | undefined {
  const holders = new Map<string, string>()
  for (const r of records) {
    const at = JSON.stringify([r.entityType, r.entityId, r.version])
    const holder = holders.get(at)
    if (holder === undefined) holders.set(at, r.id)
    else if (holder !== r.id)
      return conflict(r, `change ${JSON.stringify(holder)} of the same batch`)
  }
  return undefined
}

/**
 * A unique violation of `ac_state_changes_entity_version_key`: an entity version is taken (change
 * ids never conflict: they are inserted with ON CONFLICT DO NOTHING). A unique violation of
 * anything else (a constraint of yours on another table) is not.
 */
export function isVersionTaken(error: unknown): boolean {
  if (classifyFailure(error) !== 'statement') return false
  const code = sqlState(error)
  if (code !== undefined && code !== '23505') return false
  const text = `${(error as Error)?.message} ${JSON.stringify((error as { meta?: unknown })?.meta ?? '')}`
  return text.includes('ac_state_changes_entity_version_key')
}

/**
 * After the database refused `records` with a taken entity version ({@link isVersionTaken}),
 * finds the record and the change holding its version. `run` runs a query outside the failed
 * transaction; when that fails too, the error names the batch instead of the record.
 */
export async function versionConflict(
  records: readonly ChangeRecord[],
  cause: unknown,
  run: <T>(fn: (db: PrismaLike) => Promise<T>) => Promise<T>,
): Promise<ConflictError> {
  let taken: { id: string; entity_type: string; entity_id: string; version: bigint }[] = []
  try {
    taken = await run((db) =>
      db.$queryRawUnsafe(
        `SELECT id, entity_type, entity_id, version FROM ac_state_changes
          WHERE (entity_type, entity_id, version) IN
            (SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]))`,
        records.map((r) => r.entityType),
        records.map((r) => r.entityId),
        records.map((r) => String(r.version)),
      ),
    )
  } catch {
    // the lookup only improves the message
  }
  for (const r of records) {
    const holder = taken.find(
      (t) =>
        t.entity_type === r.entityType &&
        t.entity_id === r.entityId &&
        Number(t.version) === r.version &&
        t.id !== r.id,
    )
    if (holder !== undefined)
      return conflict(r, `change ${JSON.stringify(holder.id)}, already in the log`, cause)
  }
  const first = records[0] as ChangeRecord
  return withMessage(
    new ConflictError(first.version - 1, first.version, { tier: 'postgres', cause }),
    `version conflict: a change of this batch of ${records.length} is for an entity version the ` +
      'change log already holds under another change id; nothing of the batch was appended',
  )
}

function conflict(r: ChangeRecord, holder: string, cause?: unknown): ConflictError {
  return withMessage(
    new ConflictError(r.version - 1, r.version, {
      tier: 'postgres',
      namespace: r.entityType,
      key: r.entityId,
      ...(cause === undefined ? {} : { cause }),
    }),
    `version conflict: version ${r.version} of ${r.entityType} ${JSON.stringify(r.entityId)} is ` +
      `taken by ${holder}; change ${JSON.stringify(r.id)} was not appended, nor anything ` +
      'else of its batch',
  )
}

/** Core's `ConflictError` words its message for compare-and-set; the change log says more. */
function withMessage(error: ConflictError, message: string): ConflictError {
  const head = `${error.name}: ${error.message}`
  error.message = message
  if (error.stack?.startsWith(head)) {
    error.stack = `${error.name}: ${message}${error.stack.slice(head.length)}`
  }
  return error
}
