import {
  type ChangeRecord,
  InvalidOptionError,
  validateKey,
  validateNamespace,
} from '@actor-cache/core'

/** Which changes a subscription follows. */
export interface ChangeFilter {
  /** Entity types (cache namespaces) to follow: one or several. */
  entityType: string | readonly string[]
  /** Only these entities of those types; omitted: every entity of them. */
  entityId?: string | readonly string[]
}

/**
 * Where a subscription starts:
 * - `{ afterVersion: n }`: the versions after `n` of one entity (a filter of a single type and
 *   a single id); `0` is the whole history;
 * - `{ afterTime: t }`: every change stamped after `t` (epoch ms or a Date), per entity from its
 *   first version stamped after `t`;
 * - `{ fromNow: true }`: every change stamped at or after the log's clock when the subscription
 *   starts (its first `next()` or `start()`).
 */
export type SubscribeFrom =
  | { afterVersion: number }
  | { afterTime: number | Date }
  | { fromNow: true }

/** Options of one subscription. */
export interface SubscribeOptions {
  /**
   * How far (in changes) the subscription may fall behind the relay before it drops its place
   * in the relay's window and reads the log itself until it catches up. At most the stream's
   * `capacity`. @default the stream's capacity
   */
  bufferSize?: number
  /** How long a missing version may be awaited before it is read from the log (ms). @default 1000 */
  gapTimeout?: number
}

/** Where a checked subscription starts. */
export type StartPoint =
  | { kind: 'version'; after: number }
  | { kind: 'time'; after: number }
  | { kind: 'now' }

/** A subscription's checked input. */
export interface CheckedSubscription {
  types: readonly string[]
  ids: readonly string[] | undefined
  start: StartPoint
  bufferSize: number
  gapTimeout: number
}

/** Most entity types or ids a filter may list. */
export const MAX_FILTER_ENTRIES = 1000

function list(option: string, value: unknown, check: (v: unknown) => string): string[] {
  const values = typeof value === 'string' ? [value] : value
  if (!Array.isArray(values) || values.length === 0 || values.length > MAX_FILTER_ENTRIES) {
    throw new InvalidOptionError(
      option,
      `must be a string or an array of 1 to ${MAX_FILTER_ENTRIES} strings, got ${describe(value)}`,
    )
  }
  return [...new Set(values.map(check))]
}

const describe = (v: unknown): string =>
  typeof v === 'string'
    ? JSON.stringify(v)
    : Array.isArray(v)
      ? `an array of ${v.length}`
      : String(v)

function checkStart(from: unknown, types: string[], ids: string[] | undefined): StartPoint {
  if (typeof from !== 'object' || from === null) {
    throw new InvalidOptionError(
      'from',
      `must be { afterVersion }, { afterTime } or { fromNow: true }, got ${describe(from)}`,
    )
  }
  const keys = Object.keys(from)
  const f = from as Record<string, unknown>
  if (keys.length !== 1) {
    throw new InvalidOptionError(
      'from',
      `must name exactly one of afterVersion, afterTime, fromNow; got ${JSON.stringify(keys)}`,
    )
  }
  if ('afterVersion' in f) {
    const v = f.afterVersion
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new InvalidOptionError(
        'from.afterVersion',
        `must be a nonnegative integer, got ${String(v)}`,
      )
    }
    if (types.length !== 1 || ids?.length !== 1) {
      throw new InvalidOptionError(
        'from.afterVersion',
        'needs a filter of one entityType and one entityId (versions are per entity)',
      )
    }
    return { kind: 'version', after: v as number }
  }
  if ('afterTime' in f) {
    const t = f.afterTime instanceof Date ? f.afterTime.getTime() : f.afterTime
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
      throw new InvalidOptionError(
        'from.afterTime',
        `must be epoch milliseconds (>= 0) or a valid Date, got ${String(f.afterTime)}`,
      )
    }
    return { kind: 'time', after: Math.floor(t) }
  }
  if ('fromNow' in f) {
    if (f.fromNow !== true)
      throw new InvalidOptionError('from.fromNow', `must be true, got ${String(f.fromNow)}`)
    return { kind: 'now' }
  }
  throw new InvalidOptionError(
    'from',
    `unknown start ${JSON.stringify(keys[0])}: use afterVersion, afterTime or fromNow`,
  )
}

/** `value` (else `fallback`) as an integer from 1 to `max`; an `InvalidOptionError` naming `option` otherwise. */
export function checkCount(option: string, value: unknown, fallback: number, max: number): number {
  const n = value ?? fallback
  if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > max) {
    throw new InvalidOptionError(
      option,
      `must be an integer from 1 to ${max}, got ${String(value)}`,
    )
  }
  return n as number
}

/**
 * Checks a subscription's filter, start and options, before any I/O.
 * @throws {InvalidOptionError} for a malformed filter, start or option
 * @throws {InvalidKeyError} for a malformed entity type or id
 */
export function checkSubscription(
  filter: ChangeFilter,
  from: SubscribeFrom,
  options: SubscribeOptions | undefined,
  capacity: number,
): CheckedSubscription {
  if (typeof filter !== 'object' || filter === null) {
    throw new InvalidOptionError(
      'filter',
      `must be { entityType, entityId? }, got ${describe(filter)}`,
    )
  }
  const types = list('filter.entityType', filter.entityType, validateNamespace)
  const ids =
    filter.entityId === undefined
      ? undefined
      : list('filter.entityId', filter.entityId, (id) => validateKey(id))
  return {
    types,
    ids,
    start: checkStart(from, types, ids),
    bufferSize: checkCount('bufferSize', options?.bufferSize, capacity, capacity),
    gapTimeout: checkCount('gapTimeout', options?.gapTimeout, 1000, 600_000),
  }
}

/** A predicate for the records a checked subscription follows. */
export function recordFilter(s: CheckedSubscription): (r: ChangeRecord) => boolean {
  const types = new Set(s.types)
  const ids = s.ids === undefined ? undefined : new Set(s.ids)
  return (r) => types.has(r.entityType) && (ids === undefined || ids.has(r.entityId))
}
