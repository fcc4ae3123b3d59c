/**
 * Every error Actor Cache throws on purpose is an {@link ActorCacheError} with a stable `code`.
 * Match on `code` (or `instanceof` the class), never on the message: messages may improve,
 * codes never change meaning.
 */

/** Stable error codes. */
export type ErrorCode =
  | 'E_INVALID_KEY'
  | 'E_INVALID_OPTION'
  | 'E_INVALID_CONFIG'
  | 'E_SERIALIZATION'
  | 'E_DECODE'
  | 'E_VALUE_TOO_LARGE'
  | 'E_CONFLICT'
  | 'E_QUEUE_FULL'
  | 'E_TIER_UNAVAILABLE'
  | 'E_TIMEOUT'
  | 'E_CLOSED'
  | 'E_WRITE_REJECTED'
  | 'E_DECRYPT'
  | 'E_FORBIDDEN'
  | 'E_RATE_LIMITED'
  | 'E_UNDO_CONFLICT'
  | 'E_LEASE_LOST'

/** Fields that locate an error: which tier, which namespace, which key. */
export interface ErrorContext {
  /** Tier that raised the error (`memory`, `redis`, `postgres`, ...). */
  tier?: string
  /** Namespace (entity type) the operation addressed. */
  namespace?: string
  /** Key the operation addressed (already validated keys only; never raw secrets). */
  key?: string
  /** Underlying error. */
  cause?: unknown
}

/** Base class of every typed Actor Cache error. */
export class ActorCacheError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode
  /** Tier that raised the error, when known. */
  readonly tier: string | undefined
  /** Namespace the operation addressed, when known. */
  readonly namespace: string | undefined
  /** Key the operation addressed, when known. */
  readonly key: string | undefined

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause })
    this.name = new.target.name
    this.code = code
    this.tier = context.tier
    this.namespace = context.namespace
    this.key = context.key
  }
}

/** A key, namespace, tag or pattern is malformed (empty, too long, control characters, ...). */
export class InvalidKeyError extends ActorCacheError {
  constructor(message: string, context?: ErrorContext) {
    super('E_INVALID_KEY', message, context)
  }
}

/** An option passed in code has a value outside its domain (negative TTL, unknown mode, ...). */
export class InvalidOptionError extends ActorCacheError {
  /** Name of the offending option. */
  readonly option: string
  constructor(option: string, message: string, context?: ErrorContext) {
    super('E_INVALID_OPTION', `${option}: ${message}`, context)
    this.option = option
  }
}

/** One problem found in a configuration document. */
export interface ConfigIssue {
  /** Dotted path of the offending setting, e.g. `strategies.derived_stats.ttl`. */
  path: string
  /** What was expected there. */
  message: string
}

/** A configuration document failed validation. `issues` lists every problem with its path. */
export class InvalidConfigError extends ActorCacheError {
  /** All problems found, in document order. */
  readonly issues: readonly ConfigIssue[]
  constructor(issues: readonly ConfigIssue[], context?: ErrorContext & { source?: string }) {
    const where = context?.source ? ` in ${context.source}` : ''
    const lines = issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')
    super('E_INVALID_CONFIG', `invalid cache configuration${where}:\n${lines}`, context)
    this.issues = issues
  }
}

/** A value cannot be stored faithfully (cycle, function, symbol, class instance, ...). Raised at set time. */
export class SerializationError extends ActorCacheError {
  /** Path inside the value where the problem was found, e.g. `$.stats[3]`. */
  readonly path: string | undefined
  constructor(message: string, context?: ErrorContext & { path?: string }) {
    super('E_SERIALIZATION', message, context)
    this.path = context?.path
  }
}

/** Stored bytes could not be decoded (corrupt, foreign, tampered, or hostile such as `__proto__`). */
export class DecodeError extends ActorCacheError {
  constructor(message: string, context?: ErrorContext) {
    super('E_DECODE', message, context)
  }
}

/** A value exceeds the size a tier accepts for one entry. */
export class ValueTooLargeError extends ActorCacheError {
  /** Size of the rejected value in bytes (estimated for in-memory tiers). */
  readonly size: number
  /** The limit it exceeded, in bytes. */
  readonly limit: number
  constructor(size: number, limit: number, context?: ErrorContext) {
    super('E_VALUE_TOO_LARGE', `value of ${size} bytes exceeds the ${limit}-byte limit`, context)
    this.size = size
    this.limit = limit
  }
}

/**
 * A version is not what the writer assumed: a compare-and-set found another stored version, or a
 * change log already holds the entity version being appended.
 */
export class ConflictError extends ActorCacheError {
  /** Version the caller expected (`0` means "absent"). */
  readonly expectedVersion: number
  /** Version actually stored (`0` when absent). */
  readonly actualVersion: number
  /**
   * @param context `message` replaces the compare-and-set wording (`version conflict: expected
   * version 3, found 4`) where it would mislead, e.g. for a change-log version already taken.
   */
  constructor(
    expectedVersion: number,
    actualVersion: number,
    context?: ErrorContext & { message?: string },
  ) {
    super(
      'E_CONFLICT',
      context?.message ??
        `version conflict: expected version ${expectedVersion}, found ${actualVersion}`,
      context,
    )
    this.expectedVersion = expectedVersion
    this.actualVersion = actualVersion
  }
}

/** A bounded queue is at capacity; the write was not accepted (never silently dropped). */
export class QueueFullError extends ActorCacheError {
  /** Capacity of the queue in entries. */
  readonly capacity: number
  constructor(capacity: number, context?: ErrorContext) {
    super('E_QUEUE_FULL', `write queue is full (capacity ${capacity}); write rejected`, context)
    this.capacity = capacity
  }
}

/** A tier (Redis, database) cannot be reached, or its circuit breaker is open. */
export class TierUnavailableError extends ActorCacheError {
  constructor(message: string, context?: ErrorContext) {
    super('E_TIER_UNAVAILABLE', message, context)
  }
}

/** An operation did not finish within its configured bound. */
export class TimeoutError extends ActorCacheError {
  /** The bound that was exceeded, in milliseconds. */
  readonly timeoutMs: number
  constructor(timeoutMs: number, message: string, context?: ErrorContext) {
    super('E_TIMEOUT', message, context)
    this.timeoutMs = timeoutMs
  }
}

/** The object was closed; no further operations are accepted. */
export class ClosedError extends ActorCacheError {
  constructor(what: string, context?: ErrorContext) {
    super('E_CLOSED', `${what} is closed`, context)
  }
}

/** One item of a batch the store refused. */
export interface RejectedWrite {
  key: string
  /** What the store said. */
  reason: string
}

/**
 * The store refused some items of a batch (a constraint, a trigger, a value it cannot hold);
 * nothing of the batch was written. `rejected` names the items and the reasons, so the caller
 * can set them aside (dead-letter) and retry the rest.
 */
export class WriteRejectedError extends ActorCacheError {
  readonly rejected: readonly RejectedWrite[]
  constructor(rejected: readonly RejectedWrite[], context?: ErrorContext) {
    const list = rejected
      .slice(0, 5)
      .map((r) => `${r.key} (${r.reason})`)
      .join(', ')
    super(
      'E_WRITE_REJECTED',
      `${rejected.length} write(s) rejected: ${list}${rejected.length > 5 ? ', ...' : ''}`,
      context,
    )
    this.rejected = rejected
  }
}

/**
 * Encrypted data could not be opened: tampered ciphertext, tag, nonce or key id, a value copied
 * from another key or namespace, an unknown key id, or plaintext where ciphertext was expected.
 * Never carries key material or plaintext. A subclass of {@link DecodeError} with its own code.
 */
export class DecryptError extends DecodeError {
  // a DecodeError too, so code that drops undecodable entries treats tampered ones alike
  override readonly code: ErrorCode = 'E_DECRYPT'
  /** Key id named by the stored value, when it could be read. */
  readonly keyId: string | undefined
  constructor(message: string, context?: ErrorContext & { keyId?: string }) {
    super(message, context)
    this.keyId = context?.keyId
  }
}

/** An access policy refused an operation: names the principal's roles, the operation and the namespace. */
export class ForbiddenError extends ActorCacheError {
  /** Id of the principal that was refused. */
  readonly principal: string
  /** Roles the principal held (none of them allowed the operation). */
  readonly roles: readonly string[]
  /** The refused operation (`read`, `write`, `delete`, `invalidate`, `admin`). */
  readonly operation: string
  constructor(
    principal: string,
    roles: readonly string[],
    operation: string,
    context?: ErrorContext,
  ) {
    const where = context?.namespace === undefined ? '' : ` on namespace "${context.namespace}"`
    const who = roles.length === 0 ? 'no role' : `role(s) ${roles.map((r) => `"${r}"`).join(', ')}`
    super(
      'E_FORBIDDEN',
      `principal "${principal}" with ${who} may not ${operation}${where}`,
      context,
    )
    this.principal = principal
    this.roles = roles
    this.operation = operation
  }
}

/** A rate limit refused the call; `retryAfterMs` says when the next call may succeed. */
export class RateLimitedError extends ActorCacheError {
  /** Milliseconds until the limit lets a call through again. */
  readonly retryAfterMs: number
  /** Id of the principal that was limited. */
  readonly principal: string
  constructor(principal: string, retryAfterMs: number, context?: ErrorContext) {
    const where = context?.namespace === undefined ? '' : ` on namespace "${context.namespace}"`
    super(
      'E_RATE_LIMITED',
      `principal "${principal}" is rate limited${where}; retry after ${retryAfterMs} ms`,
      context,
    )
    this.principal = principal
    this.retryAfterMs = retryAfterMs
  }
}

/**
 * An undo cannot revert a change cleanly: fields it changed were changed again since. Names the
 * fields; nothing was written.
 */
export class UndoConflictError extends ActorCacheError {
  /** Id of the change that was to be undone. */
  readonly changeId: string
  /** Fields changed again since that change (`''` for a value without fields). */
  readonly fields: readonly string[]
  constructor(changeId: string, fields: readonly string[], context?: ErrorContext) {
    const names = fields.map((f) => (f === '' ? 'the value' : `"${f}"`)).join(', ')
    super(
      'E_UNDO_CONFLICT',
      `cannot undo change ${JSON.stringify(changeId)}: ${names} changed again since; undo with force to overwrite`,
      context,
    )
    this.changeId = changeId
    this.fields = fields
  }
}

/**
 * A lease (the change-stream relay's) is held by a newer holder: the write made under the old
 * one was refused, so it cannot overwrite the newer holder's work. The old holder stops.
 */
export class LeaseLostError extends ActorCacheError {
  /** The epoch the refused write was made under. */
  readonly epoch: number
  constructor(what: string, epoch: number, context?: ErrorContext) {
    super(
      'E_LEASE_LOST',
      `${what}: the lease of epoch ${epoch} was lost to a newer holder`,
      context,
    )
    this.epoch = epoch
  }
}

/** Every error class, by name, for `instanceof` checks without deep imports. */
export const errors = {
  ActorCacheError,
  InvalidKeyError,
  InvalidOptionError,
  InvalidConfigError,
  SerializationError,
  DecodeError,
  ValueTooLargeError,
  ConflictError,
  QueueFullError,
  TierUnavailableError,
  TimeoutError,
  ClosedError,
  WriteRejectedError,
  DecryptError,
  ForbiddenError,
  RateLimitedError,
  UndoConflictError,
  LeaseLostError,
} as const

/**
 * True when `error` is an Actor Cache error, optionally with the given code.
 * @example if (isActorCacheError(err, 'E_CONFLICT')) retry()
 */
export function isActorCacheError(error: unknown, code?: ErrorCode): error is ActorCacheError {
  return error instanceof ActorCacheError && (code === undefined || error.code === code)
}
