/**
 * Services of the tests that need them: a private redis-server the tests can kill and restart on
 * the same port (from `@actor-cache/test-utils`), and a PostgreSQL schema of their own.
 */
import { randomUUID } from 'node:crypto'
import { connectPostgres } from '@actor-cache/prisma-store/client'

export { privateRedis, type RedisServer } from '@actor-cache/test-utils/redis-server'

/** Polls `check` every 20 ms until it holds; fails after `ms` (a bound on a hang, not a timing). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** PostgreSQL of the tests: `DATABASE_URL`, else the local server's database `test`. */
export const DATABASE_URL: string =
  process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

type Admin = Awaited<ReturnType<typeof connectPostgres>>

/** A schema of the test's own in {@link DATABASE_URL}: its URL, raw SQL on it, and its removal. */
export interface TestSchema {
  readonly name: string
  /** `DATABASE_URL` with `?schema=` this schema. */
  readonly url: string
  query<T = unknown>(sql: string): Promise<T[]>
  drop(): Promise<void>
}

/** Creates a schema named `<prefix>_<random>`; fails saying what to start when PostgreSQL is not there. */
export async function testSchema(prefix: string): Promise<TestSchema> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 10)}`
  let admin: Admin
  try {
    admin = await connectPostgres(DATABASE_URL, { connectionTimeoutMillis: 3000 })
    await admin.$executeRawUnsafe(`CREATE SCHEMA "${name}"`)
  } catch (error) {
    throw new Error(
      `this test needs PostgreSQL at ${DATABASE_URL} with the database "test" (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  const url = new URL(DATABASE_URL)
  url.searchParams.set('schema', name)
  return {
    name,
    url: url.toString(),
    query: (sql) => admin.$queryRawUnsafe(sql),
    async drop() {
      try {
        await admin.$executeRawUnsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
      } finally {
        await admin.$disconnect()
      }
    },
  }
}

/** Does something accept TCP connections on 127.0.0.1:`port`? */
