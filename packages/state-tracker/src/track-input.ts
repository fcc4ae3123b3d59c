import { randomUUID } from 'node:crypto'
import {
  type ChangeType,
  InvalidOptionError,
  type Serializer,
  validateKey,
  validateNamespace,
} from '@actor-cache/core'
import { hashableValue } from './chain-hash.js'
import { type ChangeAuthor, checkAuthor, resolveAuthor } from './context.js'

/**
 * A change to track, as the design document writes it: entity type, entity id, change type, old
 * and new value, timestamp, user id, system id. The tracker adds the version, the chain links
 * and the log's time.
 */
export interface TrackChangeInput<T = unknown> {
  /**
   * Unique forever; a retry with the same id (say, after a reply that never arrived) returns the
   * change logged the first time instead of logging it twice. @default a new random UUID
   */
  id?: string
  /** Entity type, e.g. `primary_core` (a cache namespace). */
  entityType: string
  /** Entity id, e.g. `actor:123` (a cache key). */
  entityId: string
  changeType: ChangeType
  /**
   * The value before the change. When omitted, the state the log ends with; when given, it must
   * be that state, or the change is refused as a conflict (someone else changed the entity since
   * the caller read it). `null` for a create.
   */
  oldValue?: T | null
  /** The value after the change: required for create and update, `null` or absent for delete. */
  newValue?: T | null
  /**
   * The caller's clock, accepted for the design document's shape and checked; the record is
   * stamped by the log's clock (the database's), so that times never decrease per entity.
   */
  timestamp?: number
  /** Who the change is for. @default the enclosing `trackAs` author's */
  userId?: string
  /** Which system makes it. @default the enclosing `trackAs` author's, else the tracker's `systemId` */
  systemId?: string
}

/**
 * The entity state a change expects before it, checked against the log's head:
 * `'any'` (no check), `'absent'` (never created, or deleted), `'exists'`, or an exact version.
 */
export type ExpectedVersion = 'any' | 'absent' | 'exists' | number

/** Options of `trackChange`. */
export interface TrackChangeOptions extends ChangeAuthor {
  /** @default 'any' */
  expectedVersion?: ExpectedVersion
}

/** A change checked and completed, before the log is read. */
export interface CheckedChange {
  id: string
  entityType: string
  entityId: string
  changeType: ChangeType
  /** `undefined` when the caller left it to the log. */
  oldValue: unknown
  newValue: unknown
  userId: string
  systemId: string
  expected: ExpectedVersion
}

const CHANGE_TYPES: ReadonlySet<string> = new Set(['create', 'update', 'delete'])

function checkExpected(expected: unknown): ExpectedVersion {
  if (expected === undefined) return 'any'
  if (expected === 'any' || expected === 'absent' || expected === 'exists') return expected
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) {
    return expected
  }
  throw new InvalidOptionError(
    'expectedVersion',
    `must be 'any', 'absent', 'exists' or a version (an integer from 0), got ${JSON.stringify(expected)}`,
  )
}

function checkValues(input: TrackChangeInput, serializer: Serializer): void {
  const { changeType, oldValue, newValue } = input
  const has = (v: unknown): boolean => v !== null && v !== undefined
  if (changeType !== 'delete' && !has(newValue)) {
    throw new InvalidOptionError('newValue', `is required for a ${changeType}`)
  }
  if (changeType === 'delete' && has(newValue)) {
    throw new InvalidOptionError('newValue', 'must be null or absent for a delete')
  }
  if (changeType === 'create' && has(oldValue)) {
    throw new InvalidOptionError('oldValue', 'must be null or absent for a create')
  }
  // a value the log could not store or hash fails here, before any I/O
  hashableValue(oldValue, serializer)
  hashableValue(newValue, serializer)
}

/**
 * Checks a change and fills in its id and author, before any I/O.
 * @throws {InvalidOptionError} for a malformed field or a missing user or system id
 * @throws {InvalidKeyError} for a malformed entity type or id
 */
export function checkChange(
  input: TrackChangeInput,
  options: TrackChangeOptions | undefined,
  defaults: { systemId?: string; serializer: Serializer },
): CheckedChange {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidOptionError('change', 'must be an object')
  }
  const entityType = validateNamespace(input.entityType)
  const entityId = validateKey(input.entityId, entityType)
  if (!CHANGE_TYPES.has(input.changeType)) {
    throw new InvalidOptionError(
      'changeType',
      `must be create, update or delete, got ${JSON.stringify(input.changeType)}`,
    )
  }
  if (
    input.id !== undefined &&
    (typeof input.id !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(input.id))
  ) {
    throw new InvalidOptionError('id', 'must be 1 to 200 printable ASCII characters')
  }
  if (input.timestamp !== undefined && !Number.isFinite(input.timestamp)) {
    throw new InvalidOptionError('timestamp', 'must be epoch milliseconds')
  }
  checkValues(input, defaults.serializer)
  const given = checkAuthor({ userId: input.userId, systemId: input.systemId }, 'change')
  const opts = checkAuthor({ userId: options?.userId, systemId: options?.systemId }, 'options')
  const who = resolveAuthor([given, opts], defaults.systemId)
  if ('missing' in who) {
    throw new InvalidOptionError(
      who.missing,
      'a tracked change needs a user id and a system id: pass them in the change or its options, or set them once per request with trackAs()',
    )
  }
  return {
    id: input.id ?? randomUUID(),
    entityType,
    entityId,
    changeType: input.changeType,
    oldValue: input.oldValue,
    newValue: input.changeType === 'delete' ? null : input.newValue,
    userId: who.userId,
    systemId: who.systemId,
    expected: checkExpected(options?.expectedVersion),
  }
}
