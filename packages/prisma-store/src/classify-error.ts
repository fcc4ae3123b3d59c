/**
 * What a failed database call means for the cache: the database could not run it now
 * (`unavailable`), this package's tables are missing (`unmigrated`), or it refused the statement
 * (`statement`). Decided from structure, most specific first:
 *
 * 1. the driver adapter's mapped error (`meta.driverAdapterError.cause.kind`, the SQLSTATE for
 *    kind `postgres`), which Prisma 7 attaches to every error it raises for a driver adapter;
 * 2. Prisma's own error code (`P1001`, ...) on errors that carry no adapter error;
 * 3. the SQLSTATE of a raw `pg` DatabaseError, or the code of a Node socket error;
 * 4. only then the message text. Prisma rethrows errors its adapter could not map as they are,
 *    e.g. `pg`'s "Connection terminated unexpectedly", which has no code at all.
 *
 * Messages are last because they are not an interface: Prisma words a closed connection
 * "Server has closed the connection.", which no pattern for "connection closed" matched, and
 * a refused row's value may contain any text.
 */
import { ActorCacheError, TierUnavailableError } from '@actor-cache/core'

/** See the file comment. */
export type FailureClass = 'unavailable' | 'unmigrated' | 'statement'

/** The mapped error of `@prisma/driver-adapter-utils` (only the fields read here). */
interface AdapterCause {
  kind?: string
  code?: string
  originalCode?: string
  originalMessage?: string
  message?: string
  host?: string
  port?: number
  table?: string
  column?: string
}

/** Driver adapter error kinds that mean the database cannot run anything for us right now. */
const UNAVAILABLE_KINDS = new Set([
  'DatabaseNotReachable', // ECONNREFUSED, ENOTFOUND: nothing listens there
  'ConnectionClosed', // ECONNRESET: the server went away under a statement
  'SocketTimeout', // ETIMEDOUT
  'TooManyConnections', // 53300
  'TransactionAlreadyClosed', // the transaction died with its connection, or timed out
  // Refused at connect time: no statement ran and no row is at fault, so a write must stay
  // queued (not be dead-lettered) until the configuration or the server is fixed.
  'DatabaseDoesNotExist',
  'DatabaseAccessDenied',
  'AuthenticationFailed',
  'TlsConnectionError',
])

/** Kinds that mean a table or column of ours is missing. */
const UNMIGRATED_KINDS = new Set(['TableDoesNotExist', 'ColumnNotFound'])

/** Prisma codes of connection failures, for errors without an adapter error. */
const UNAVAILABLE_PRISMA_CODES = new Set([
  'P1000', // authentication failed
  'P1001', // can't reach database server
  'P1002', // server reached but timed out
  'P1003', // database does not exist
  'P1008', // operation timed out
  'P1010', // access denied
  'P1011', // TLS
  'P1017', // server closed the connection
  'P1018', // transaction already closed
  'P2024', // timed out fetching a connection from the pool
  'P2037', // too many connections
])

/** Node socket error codes (a `pg` error the adapter did not map). */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

/** Last resort for errors without any structure (see the file comment). */
const UNAVAILABLE_TEXT =
  /Connection terminated|connection (?:closed|refused|error)|closed the connection|Can't reach database|timeout exceeded when trying to connect|not queryable|Unable to start a transaction in the given time|PGlite is closed/i

function adapterCause(error: unknown): AdapterCause | undefined {
  const cause = (error as { meta?: { driverAdapterError?: { cause?: unknown } } } | undefined)?.meta
    ?.driverAdapterError?.cause
  return typeof cause === 'object' && cause !== null ? (cause as AdapterCause) : undefined
}

/** A raw `pg` DatabaseError: a five-character SQLSTATE and a severity. */
function rawSqlState(error: unknown): string | undefined {
  const e = error as { code?: unknown; severity?: unknown } | undefined
  return typeof e?.code === 'string' &&
    /^[0-9A-Z]{5}$/.test(e.code) &&
    typeof e.severity === 'string'
    ? e.code
    : undefined
}

/** The SQLSTATE of a database error, through Prisma's driver adapter or straight from `pg`. */
export function sqlState(error: unknown): string | undefined {
  const cause = adapterCause(error)
  return (
    cause?.originalCode ??
    (cause?.kind === 'postgres' ? cause.code : undefined) ??
    rawSqlState(error)
  )
}

function classifySqlState(code: string): FailureClass {
  // connection exception; insufficient resources; operator intervention (shutdown, crash,
  // starting up); system error; statement or lock timeout; refused login or unknown database
  if (/^(08|53|57P0|58|28)/.test(code) || ['57014', '55P03', '3D000'].includes(code)) {
    return 'unavailable'
  }
  // undefined table or column: not migrated, or migrated by an older version of this package
  if (code === '42P01' || code === '42703') return 'unmigrated'
  return 'statement'
}

/**
 * See the file comment. Of the typed Actor Cache errors, `E_TIER_UNAVAILABLE` and `E_TIMEOUT`
 * are `unavailable`; the others (a conflict, bad input) are about the call, so `statement`.
 */
export function classifyFailure(error: unknown): FailureClass {
  if (error instanceof ActorCacheError) {
    return error.code === 'E_TIER_UNAVAILABLE' || error.code === 'E_TIMEOUT'
      ? 'unavailable'
      : 'statement'
  }
  const cause = adapterCause(error)
  if (cause?.kind !== undefined) {
    if (UNAVAILABLE_KINDS.has(cause.kind)) return 'unavailable'
    if (UNMIGRATED_KINDS.has(cause.kind)) return 'unmigrated'
    const code = sqlState(error)
    if (code !== undefined) return classifySqlState(code)
    // GenericJs wraps an error Prisma keeps elsewhere: only its text is left
    if (cause.kind !== 'GenericJs') return 'statement'
  }
  const e = error as { code?: unknown; errorCode?: unknown; meta?: { timeout?: unknown } }
  const prismaCode = typeof e?.code === 'string' ? e.code : e?.errorCode
  if (typeof prismaCode === 'string' && /^P\d{4}$/.test(prismaCode)) {
    // P2028 with a timeout: an interactive transaction outlived its bound
    if (UNAVAILABLE_PRISMA_CODES.has(prismaCode)) return 'unavailable'
    if (prismaCode === 'P2028' && e.meta?.timeout !== undefined) return 'unavailable'
    if (prismaCode === 'P2021' || prismaCode === 'P2022') return 'unmigrated'
  }
  const raw = rawSqlState(error)
  if (raw !== undefined) return classifySqlState(raw)
  if (typeof e?.code === 'string' && SOCKET_CODES.has(e.code)) return 'unavailable'
  return UNAVAILABLE_TEXT.test(String((error as Error)?.message ?? ''))
    ? 'unavailable'
    : 'statement'
}

/** True for errors that mean the database could not be reached or could not run the call now (not a bad statement). */
export function isUnavailable(error: unknown): boolean {
  return classifyFailure(error) === 'unavailable'
}

/** The database's own words from a Prisma raw-query error (or a plain error's last line). */
export function databaseMessage(error: unknown): string {
  const cause = adapterCause(error)
  return (
    cause?.originalMessage ??
    cause?.message ??
    String((error as Error)?.message ?? error)
      .split('\n')
      .filter(Boolean)
      .at(-1)
      ?.trim() ??
    'unknown error'
  )
}

/** Why the database is unavailable, in a few words. */
function unavailableReason(error: unknown): string {
  const cause = adapterCause(error)
  switch (cause?.kind) {
    case 'DatabaseNotReachable':
      return `the database is unreachable at ${cause.host ?? 'its host'}${cause.port === undefined ? '' : `:${cause.port}`}`
    case 'ConnectionClosed':
      return 'the server closed the connection'
    case 'SocketTimeout':
      return 'the connection timed out'
    default:
      return databaseMessage(error)
  }
}

/**
 * The typed error for a failure of `operation` that is not about the statement: a
 * `TierUnavailableError` (tier `postgres`, the original as `cause`) for an outage or for missing
 * tables, the latter saying to run `migrate()`. Undefined for statement errors and for errors
 * that are typed already.
 */
export function tierError(error: unknown, operation: string): TierUnavailableError | undefined {
  if (error instanceof ActorCacheError) return undefined // already typed
  switch (classifyFailure(error)) {
    case 'unavailable':
      return new TierUnavailableError(`postgres ${operation} failed: ${unavailableReason(error)}`, {
        tier: 'postgres',
        cause: error,
      })
    case 'unmigrated':
      return new TierUnavailableError(
        `postgres ${operation} failed: ${databaseMessage(error)}. The database lacks Actor Cache's tables (or their latest columns): run migrate(prisma) on it, with the same schema/search_path as the store`,
        { tier: 'postgres', cause: error },
      )
    default:
      return undefined
  }
}
