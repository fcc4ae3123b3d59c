import { TierUnavailableError, TimeoutError } from '@actor-cache/core'

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

/** True for errors that mean the database could not be reached (not a bad statement). */
export function isUnavailable(error: unknown): boolean {
  const code = sqlState(error)
  // connection exceptions, insufficient resources, operator intervention, lock/statement timeouts
  if (code && (/^(08|53|57P0)/.test(code) || code === '55P03' || code === '57014')) return true
  const text = `${(error as { code?: string })?.code ?? ''} ${(error as Error)?.message ?? ''}`
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|P1001|P1002|P1017|P2024|Connection terminated|connection (?:closed|refused|error)|Can't reach database|timeout exceeded when trying to connect/i.test(
    text,
  )
}

/** The SQLSTATE of a database error reported through Prisma's driver adapter, if any. */
export function sqlState(error: unknown): string | undefined {
  const meta = (
    error as {
      meta?: { driverAdapterError?: { cause?: { originalCode?: string; code?: string } } }
    }
  )?.meta
  const cause = meta?.driverAdapterError?.cause
  return cause?.originalCode ?? cause?.code
}

/**
 * Runs `fn` with a deadline and maps availability failures to `TierUnavailableError`.
 * Statement errors (constraint violations, bad SQL) pass through unchanged.
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
    if (isUnavailable(error)) {
      throw new TierUnavailableError(`postgres ${operation} failed: ${(error as Error).message}`, {
        tier: 'postgres',
        cause: error,
      })
    }
    throw error
  } finally {
    clearTimeout(timer)
  }
}
