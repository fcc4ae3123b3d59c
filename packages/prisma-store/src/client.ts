/**
 * A ready PrismaClient for this package's tables, with a driver adapter: PostgreSQL through
 * `@prisma/adapter-pg`, or embedded PGlite through `pglite-prisma-adapter` (install the one you
 * use; both are optional peers). Your own generated client works with the store just as well.
 */
import { PrismaClient } from './generated/prisma/client.js'

export { PrismaClient }

/** Options of {@link connectPostgres}. */
export interface PostgresClientOptions {
  /** Schema to use (sets the search_path and the client's own schema). @default public */
  schema?: string
  /** Most pooled connections. @default 10 */
  max?: number
  /** Bound on establishing a connection, in ms. @default 5000 */
  connectionTimeoutMillis?: number
  /**
   * Server-side bound on every statement and lock wait, in ms, so that a call the store gave up
   * on (its `timeout`) is also cancelled in the database instead of applying later. Keep it at
   * or below the store's `timeout`. @default 5000
   */
  statementTimeout?: number
}

/** A PrismaClient on PostgreSQL at `connectionString`. */
export async function connectPostgres(
  connectionString: string,
  options: PostgresClientOptions = {},
): Promise<PrismaClient> {
  const { PrismaPg } = await import('@prisma/adapter-pg')
  const { schema } = options
  const statementTimeout = options.statementTimeout ?? 5000
  if (!Number.isSafeInteger(statementTimeout) || statementTimeout < 1) {
    throw new TypeError(
      `statementTimeout must be a positive integer number of ms, got ${String(statementTimeout)}`,
    )
  }
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new TypeError(`schema must be a plain identifier, got ${JSON.stringify(schema)}`)
  }
  const adapter = new PrismaPg(
    {
      connectionString,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
      options: [
        `-c statement_timeout=${statementTimeout}`,
        `-c lock_timeout=${statementTimeout}`,
        ...(schema ? [`-c search_path=${schema}`] : []),
      ].join(' '),
    },
    schema ? { schema } : undefined,
  )
  return new PrismaClient({ adapter })
}

/** A PrismaClient on embedded PGlite: in memory, or persisted in `dataDir`. */
export async function openPglite(dataDir?: string): Promise<PrismaClient> {
  const [{ PGlite }, { PrismaPGlite }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('pglite-prisma-adapter'),
  ])
  const db = dataDir === undefined ? new PGlite() : new PGlite(dataDir)
  return new PrismaClient({ adapter: new PrismaPGlite(db) })
}
