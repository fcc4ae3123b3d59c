import {
  type ChangeRecord,
  InvalidOptionError,
  type Serializer,
  UndoConflictError,
} from '@actor-cache/core'
import { sameValue } from './chain-hash.js'
import type { ChangeAuthor } from './context.js'
import { fieldsOf } from './merge.js'
import { checkPoint, type EntityStateAt, replayTo } from './state-at.js'

/**
 * Where a rollback writes: the entity type's namespace of a `TieredCache` whose `tracking`
 * includes it (`cache.namespace('primary_core')`), so the rollback is logged as an ordinary
 * change and reaches every tier and instance.
 */
export interface EntityWriter<V = unknown> {
  set(
    key: string,
    value: V,
    options: { expectedVersion: number } & ChangeAuthor,
  ): Promise<{ applied: boolean; version: number }>
  delete(key: string, options: { expectedVersion: number } & ChangeAuthor): Promise<boolean>
}

/**
 * What to roll back to: the state at a version, the state at a time, or the state without one
 * change (`undo`: only the fields that change set, and only where nobody changed them since).
 */
export type RollbackTarget = { toVersion: number } | { toTime: number } | { undo: string }

/** Options of a rollback. */
export interface RollbackOptions<V = unknown> extends ChangeAuthor {
  /** The tracked namespace to write through. */
  writer: EntityWriter<V>
  /** Undo even when fields the change set were changed since (their later values are lost). */
  force?: boolean
}

/** Outcome of a rollback. */
export interface RollbackResult {
  /** False when the entity already was in the target state (nothing written). */
  changed: boolean
  /** The entity's version after the rollback. */
  version: number
  /** The state rolled back to. */
  state: { exists: true; value: unknown } | { exists: false }
}

type Target = { exists: true; value: unknown } | { exists: false }

/** Checks a rollback target, before any I/O. */
export function checkTarget(target: unknown): RollbackTarget {
  const t = target as Partial<Record<'toVersion' | 'toTime' | 'undo', unknown>> | null
  const given = typeof t === 'object' && t !== null ? Object.keys(t) : []
  if (given.length !== 1) {
    throw new InvalidOptionError(
      'target',
      'must be { toVersion }, { toTime } or { undo: changeId }',
    )
  }
  if (t?.undo !== undefined) {
    if (typeof t.undo !== 'string' || t.undo === '') {
      throw new InvalidOptionError('target.undo', 'must be a change id')
    }
    return { undo: t.undo }
  }
  const point = checkPoint(
    t?.toVersion !== undefined ? { version: t.toVersion } : { time: t?.toTime },
  )
  return 'version' in point ? { toVersion: point.version } : { toTime: point.time }
}

/**
 * The state without change `r`: each field `r` changed goes back to its old value, where the
 * current state still has `r`'s new value; the others are conflicts (reverted anyway with
 * `force`). A value that is not an object counts as one field, `''`.
 */
function undo(r: ChangeRecord, current: EntityStateAt, force: boolean, s: Serializer): Target {
  const base = fieldsOf(r.oldValue)
  const mine = fieldsOf(r.newValue)
  const now = current.exists ? fieldsOf(current.value) : undefined
  if (r.changeType !== 'update' || base === undefined || mine === undefined || now === undefined) {
    const untouched = current.exists
      ? r.newValue !== null && sameValue(current.value, r.newValue, s)
      : r.changeType === 'delete'
    if (!untouched && !force)
      throw new UndoConflictError(r.id, [''], { namespace: r.entityType, key: r.entityId })
    return r.oldValue === null ? { exists: false } : { exists: true, value: r.oldValue }
  }
  const changed = [...new Set([...Object.keys(base), ...Object.keys(mine)])].filter(
    (k) =>
      !sameValue(base[k] ?? null, mine[k] ?? null, s) ||
      Object.hasOwn(base, k) !== Object.hasOwn(mine, k),
  )
  const conflicts = changed.filter(
    (k) =>
      !sameValue(now[k] ?? null, mine[k] ?? null, s) ||
      Object.hasOwn(now, k) !== Object.hasOwn(mine, k),
  )
  if (conflicts.length > 0 && !force) {
    throw new UndoConflictError(r.id, conflicts, { namespace: r.entityType, key: r.entityId })
  }
  const value: Record<string, unknown> = { ...now }
  for (const k of changed) {
    if (Object.hasOwn(base, k)) value[k] = base[k]
    else delete value[k]
  }
  return { exists: true, value }
}

/** The state a rollback writes, from the entity's history. */
export function rollbackState(
  history: readonly ChangeRecord[],
  target: RollbackTarget,
  force: boolean,
  serializer: Serializer,
): Target {
  if ('undo' in target) {
    const r = history.find((h) => h.id === target.undo)
    if (r === undefined) {
      throw new InvalidOptionError(
        'target.undo',
        `change ${JSON.stringify(target.undo)} is not in this entity's log`,
      )
    }
    return undo(r, replayTo(history, { version: history.at(-1)?.version ?? 0 }), force, serializer)
  }
  const at = replayTo(
    history,
    'toVersion' in target ? { version: target.toVersion } : { time: target.toTime },
  )
  return at.exists ? { exists: true, value: at.value } : { exists: false }
}

/** Writes `state` through `writer` as the next version after `head`, unless the entity is in it already. */
export async function writeRollback(
  entityId: string,
  head: ChangeRecord | undefined,
  state: Target,
  options: RollbackOptions,
  serializer: Serializer,
): Promise<RollbackResult> {
  const exists = head !== undefined && head.changeType !== 'delete'
  const version = head?.version ?? 0
  const expectedVersion = exists ? version : 0
  const same = state.exists ? exists && sameValue(head?.newValue, state.value, serializer) : !exists
  if (same) return { changed: false, version, state }
  const author = {
    ...(options.userId === undefined ? {} : { userId: options.userId }),
    ...(options.systemId === undefined ? {} : { systemId: options.systemId }),
  }
  if (state.exists) {
    const r = await options.writer.set(entityId, state.value, { expectedVersion, ...author })
    return { changed: true, version: r.version, state }
  }
  await options.writer.delete(entityId, { expectedVersion, ...author })
  return { changed: true, version: version + 1, state }
}
