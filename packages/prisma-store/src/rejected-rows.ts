import { ActorCacheError, type RejectedWrite, WriteRejectedError } from '@actor-cache/core'
import { classifyFailure, databaseMessage, sqlState } from './classify-error.js'
import type { PrismaTransaction } from './sql.js'

/**
 * An error the database raised about a statement: worth a row-by-row replay to name the rows it
 * refuses. Never an outage or missing tables (every row would "fail", to no purpose, and the
 * replay would wait out another timeout), nor contention.
 */
export function isStatementError(error: unknown): boolean {
  const code = sqlState(error)
  // deadlocks and serialization failures are contention, not bad rows
  if (code === '40P01' || code === '40001') return false
  return !(error instanceof ActorCacheError) && classifyFailure(error) === 'statement'
}

/** What {@link findRejected} needs of the store. */
export interface Replay<P extends { key: string }> {
  namespace: string
  /** Runs `fn` in one transaction whose deadline allows `statements` statements. */
  transaction(fn: (tx: PrismaTransaction) => Promise<void>, statements: number): Promise<void>
  /** Writes one row as the batch would have. */
  write(tx: PrismaTransaction, item: P): Promise<unknown>
}

/**
 * Replays a refused batch row by row, each under a savepoint, inside a transaction that is then
 * rolled back: the rows the database refuses become a `WriteRejectedError`. Its deadline grows
 * with the rows, so a slow database does not turn a refused batch into an outage that would be
 * retried forever instead of naming the refused rows. Returns the error to throw: the
 * `WriteRejectedError`, the replay's own failure, or `original` when every row went through.
 */
export async function findRejected<P extends { key: string }>(
  replay: Replay<P>,
  items: readonly P[],
  original: unknown,
): Promise<unknown> {
  const rejected: RejectedWrite[] = []
  const ROLLBACK = Symbol('rollback')
  try {
    await replay.transaction(async (tx) => {
      for (const item of items) {
        await tx.$executeRawUnsafe('SAVEPOINT ac_row')
        try {
          await replay.write(tx, item)
          await tx.$executeRawUnsafe('RELEASE SAVEPOINT ac_row')
        } catch (error) {
          await tx.$executeRawUnsafe('ROLLBACK TO SAVEPOINT ac_row')
          rejected.push({ key: item.key, reason: databaseMessage(error) })
        }
      }
      throw ROLLBACK
    }, items.length * 3)
  } catch (error) {
    if (error !== ROLLBACK) return error
  }
  if (rejected.length === 0) return original
  return new WriteRejectedError(rejected, {
    tier: 'postgres',
    namespace: replay.namespace,
    cause: original,
  })
}
