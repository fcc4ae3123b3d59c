import { InvalidOptionError } from '@actor-cache/core'
import { linkClient, type PoolLink, watchAdapter } from './direct-pool.js'
import { PrismaClient } from './generated/prisma/client.js'

/** Options of {@link connectPostgres}. */
export interface PostgresClientOptions {
  /**
   * Schema to use: sets the connection's `search_path` (where `migrate` creates the tables and
   * the store finds them) and the client's own schema. It must exist: `migrate` says so if not.
   * The connection string's `?schema=` does the same; give one or the other, or the same in both.
   * @default public
   */
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

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * A PrismaClient on PostgreSQL at `connectionString` (a `postgresql://` URL or libpq key-value
 * text), through `@prisma/adapter-pg`. The pool is the client's: `await prisma.$disconnect()`
 * closes it, after which the process has nothing of it left open.
 *
 * A store given this client sends its single-row statements (`get`, `set`, compare-and-set,
 * `delete`, `exists`, TTL) straight to the adapter's `pg` pool as named prepared statements,
 * which is several times cheaper than Prisma's raw queries; everything else, and any client you
 * build yourself, goes through Prisma.
 *
 * A `schema` query parameter (`postgresql://.../db?schema=game`, as Prisma's URLs write it)
 * selects the schema as {@link PostgresClientOptions.schema} does; `node-postgres` would ignore it.
 * An `options` query parameter is kept, after this function's own settings (so yours win).
 * @throws {InvalidOptionError} for a schema that is not a plain identifier, two different
 *   schemas (option and URL), or a `statementTimeout` that is not a positive integer
 */
export async function connectPostgres(
  connectionString: string,
  options: PostgresClientOptions = {},
): Promise<PrismaClient> {
  const { PrismaPg } = await import('@prisma/adapter-pg')
  const statementTimeout = options.statementTimeout ?? 5000
  if (!Number.isSafeInteger(statementTimeout) || statementTimeout < 1) {
    throw new InvalidOptionError(
      'statementTimeout',
      `must be a positive integer number of ms, got ${String(statementTimeout)}`,
    )
  }
  const url = splitUrl(connectionString)
  const schema = options.schema ?? url.schema
  if (options.schema !== undefined && url.schema !== undefined && options.schema !== url.schema) {
    throw new InvalidOptionError(
      'schema',
      `is ${JSON.stringify(options.schema)} but the connection string says ?schema=${url.schema}: give one`,
    )
  }
  if (schema !== undefined && !IDENTIFIER.test(schema)) {
    throw new InvalidOptionError(
      'schema',
      `must be a plain identifier (letters, digits, _; at most 63), got ${JSON.stringify(schema)}`,
    )
  }
  const settings = [
    `-c statement_timeout=${statementTimeout}`,
    `-c lock_timeout=${statementTimeout}`,
    // quoted, so that a mixed-case name means the same schema here as in the generated client
    ...(schema === undefined ? [] : [`-c search_path="${schema}"`]),
    ...(url.options === undefined ? [] : [url.options]),
  ]
  const link: PoolLink = {}
  // Prisma connects the factory lazily, and again after a $disconnect: follow each pool it makes
  class LinkedPg extends PrismaPg {
    override async connect() {
      return watchAdapter(link, await super.connect())
    }
  }
  const adapter = new LinkedPg(
    {
      connectionString: url.rest,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
      options: settings.join(' '),
    },
    schema === undefined ? undefined : { schema },
  )
  const client = new PrismaClient({ adapter })
  linkClient(client, link)
  return client
}

/**
 * Takes `schema` and `options` out of a URL's query: node-postgres ignores the first, and the
 * second, left in the URL, would replace the settings given beside it.
 */
function splitUrl(connectionString: string): { rest: string; schema?: string; options?: string } {
  if (!/^postgres(?:ql)?:\/\//i.test(connectionString)) return { rest: connectionString }
  let url: URL
  try {
    url = new URL(connectionString)
  } catch {
    return { rest: connectionString } // node-postgres reports it, without echoing a password
  }
  const schema = url.searchParams.get('schema') ?? undefined
  const options = url.searchParams.get('options') ?? undefined
  if (schema === undefined && options === undefined) return { rest: connectionString }
  url.searchParams.delete('schema')
  url.searchParams.delete('options')
  return {
    rest: url.toString(),
    ...(schema === undefined ? {} : { schema }),
    ...(options === undefined ? {} : { options }),
  }
}
