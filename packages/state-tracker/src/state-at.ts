import { type ChangeRecord, InvalidOptionError } from '@actor-cache/core'

/** Which point of an entity's history to read: a version, or a time (epoch ms). */
export type PointInTime = { version: number } | { time: number }

/** An entity's state at a point of its history. */
export type EntityStateAt<T = unknown> =
  | {
      exists: true
      value: T
      /** The version that produced this state. */
      version: number
      /** When that version was logged (the log's clock). */
      timestamp: number
    }
  | {
      exists: false
      /** The version that deleted the entity; `0` before its first change. */
      version: number
    }

/** Checks a point in time, before any I/O. */
export function checkPoint(at: unknown): PointInTime {
  const p = at as Partial<{ version: unknown; time: unknown }> | null
  if (typeof p !== 'object' || p === null || 'version' in p === 'time' in p) {
    throw new InvalidOptionError('at', 'must be { version } or { time }')
  }
  if ('version' in p) {
    if (!Number.isSafeInteger(p.version) || (p.version as number) < 0) {
      throw new InvalidOptionError(
        'at.version',
        `must be an integer from 0, got ${String(p.version)}`,
      )
    }
    return { version: p.version as number }
  }
  if (typeof p.time !== 'number' || !Number.isFinite(p.time)) {
    throw new InvalidOptionError('at.time', `must be epoch milliseconds, got ${String(p.time)}`)
  }
  return { time: p.time }
}

/**
 * Replays `history` (one entity's records in version order) from version 1 up to `at`: the last
 * version at or below it, or the last logged at or before the time. Versions decide the order;
 * times only pick where to stop (they never decrease along a verified chain).
 * @throws {InvalidOptionError} for a version past the entity's newest
 */
export function replayTo(history: readonly ChangeRecord[], at: PointInTime): EntityStateAt {
  const newest = history.at(-1)?.version ?? 0
  if ('version' in at && at.version > newest) {
    throw new InvalidOptionError(
      'at.version',
      `is ${at.version}, but the entity's newest version is ${newest}`,
    )
  }
  let state: EntityStateAt = { exists: false, version: 0 }
  for (const r of history) {
    if ('version' in at ? r.version > at.version : r.timestamp > at.time) break
    state =
      r.changeType === 'delete'
        ? { exists: false, version: r.version }
        : { exists: true, value: r.newValue, version: r.version, timestamp: r.timestamp }
  }
  return state
}
