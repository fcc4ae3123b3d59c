import { TierUnavailableError, TimeoutError } from '@actor-cache/core'
import { tierError } from './classify-error.js'

/** What this package needs from a PrismaClient (any generated client, with any driver adapter). */
export interface PrismaLike {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>
  $transaction<R>(
    fn: (tx: PrismaTransaction) => Promise<R>,
    options?: { timeout?: number; maxWait?: number },
  ): Promise<R>
}

/** The client handed to `$transaction` callbacks. */
export interface PrismaTransaction {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>
}

/**
 * Runs `fn` with a deadline and maps failures that are not about the statement (an outage, a
 * timeout, missing tables) to `TierUnavailableError`; see `classifyFailure`. Statement errors
 * (constraint violations, bad SQL) and typed Actor Cache errors pass through unchanged.
 */
export async function guarded<T>(
  timeoutMs: number,
  operation: string,
  fn: () => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TimeoutError(
            timeoutMs,
            `postgres ${operation} did not finish within ${timeoutMs} ms`,
            { tier: 'postgres' },
          ),
        ),
      timeoutMs,
    )
  })
  try {
    const work = fn()
    work.catch(() => undefined)
    return await Promise.race([work, deadline])
  } catch (error) {
    if (error instanceof TimeoutError) {
      throw new TierUnavailableError(error.message, { tier: 'postgres', cause: error })
    }
    throw tierError(error, operation) ?? error
  } finally {
    clearTimeout(timer)
  }
}
