/**
 * The `pg` pool under a client that {@link connectPostgres} made, for the store's hot statements.
 *
 * Prisma's raw-query path costs far more CPU per call than the statement's round trip (its
 * request pipeline, the compiled query plan, argument and result mapping), and it sends every
 * statement unnamed, so PostgreSQL parses and plans it on every call. The store's single-row
 * statements are a fixed handful of texts; on a client this package created, they go to the
 * driver adapter's own pool (the one Prisma queries through: same connections, same
 * `statement_timeout` and `search_path`) as named prepared statements. Clients built elsewhere
 * keep Prisma's raw queries. Nothing here is exported from the package.
 */
import { createHash } from 'node:crypto'
import type { PrismaTransaction } from './sql.js'

/** What is used of a `pg.Pool` (structural, so that this package's types do not need `pg`'s). */
export interface DirectPool {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{
    rows: unknown[]
    rowCount: number | null
  }>
  /** Set once `end()` was called: the pool takes no more queries. */
  readonly ending: boolean
}

/** What is used of the driver adapter `@prisma/adapter-pg` connects. */
export interface PoolAdapter {
  underlyingDriver(): unknown
  dispose(): Promise<void>
}

/** The pool a client's adapter currently has, and the queries that use it. */
export interface PoolLink {
  pool?: DirectPool
  queries?: PrismaTransaction
}

const links = new WeakMap<object, PoolLink>()
const names = new Map<string, string>()

/**
 * A name per statement text, the same in every process (a digest): `pg` prepares a named
 * statement once per connection and refuses one name for two texts.
 */
export function statementName(text: string): string {
  let name = names.get(text)
  if (name === undefined) {
    name = `actor_cache_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`
    names.set(text, name)
  }
  return name
}

/** The store's statements over `pool`, as named prepared statements. */
function poolQueries(pool: DirectPool): PrismaTransaction {
  return {
    async $queryRawUnsafe<T>(text: string, ...values: unknown[]): Promise<T> {
      return (await pool.query({ name: statementName(text), text, values })).rows as T
    },
    async $executeRawUnsafe(text: string, ...values: unknown[]): Promise<number> {
      return (await pool.query({ name: statementName(text), text, values })).rowCount ?? 0
    },
  }
}

/**
 * Makes `link` the pool link of `client`: its factory gives {@link watchAdapter} each adapter it
 * connects (Prisma connects again after a `$disconnect`, with a new pool).
 */
export function linkClient(client: object, link: PoolLink): void {
  links.set(client, link)
}

/** Records the pool of a connected adapter, and forgets it when the adapter is disposed. */
export function watchAdapter<A extends PoolAdapter>(link: PoolLink, adapter: A): A {
  const pool = adapter.underlyingDriver() as DirectPool
  link.pool = pool
  link.queries = poolQueries(pool)
  const dispose = adapter.dispose.bind(adapter)
  adapter.dispose = async () => {
    if (link.pool === pool) {
      link.pool = undefined
      link.queries = undefined
    }
    await dispose()
  }
  return adapter
}

/**
 * Queries over the `pg` pool of `client` when {@link connectPostgres} made it and Prisma has
 * connected it (and not closed it); `undefined` otherwise, for Prisma's raw queries.
 */
export function directQueries(client: object): PrismaTransaction | undefined {
  const link = links.get(client)
  return link?.pool === undefined || link.pool.ending ? undefined : link.queries
}
