import { createHash, randomUUID } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { TierUnavailableError } from '@actor-cache/core'
import { isUnavailable, tierError } from './classify-error.js'
import type { PrismaLike, PrismaTransaction } from './sql.js'

/** A migration shipped with this package. */
export interface Migration {
  /** Directory name, e.g. `20261125000000_init`. */
  name: string
  sql: string
  /** SHA-256 of migration.sql, as `prisma migrate deploy` records it. */
  checksum: string
}

const MIGRATIONS_DIR = new URL('../prisma/migrations/', import.meta.url)

/** The migrations this package ships, oldest first. */
export async function listMigrations(): Promise<Migration[]> {
  const names = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(new URL(`${name}/migration.sql`, MIGRATIONS_DIR), 'utf8')
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    }),
  )
}

/** Splits a migration into statements (our SQL has no semicolons inside statements). */
export function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

// Prisma Migrate's own bookkeeping table: recording our migrations there lets users switch to
// (or mix in) `prisma migrate deploy` with the same files.
const BOOKKEEPING = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`

/** Outcome of {@link migrate}. */
export interface MigrateResult {
  /** Migrations applied by this call. */
  applied: string[]
  /** Migrations that were already applied. */
  skipped: string[]
}

/**
 * Migrations wait for each other on a database-wide advisory lock: give the transactions room to
 * wait for another migrator (Prisma's defaults are 2 s to start and 5 s to run).
 */
const MIGRATE_TX = { maxWait: 60_000, timeout: 120_000 }

/**
 * Applies the shipped migrations that the database has not recorded yet, each in its own
 * transaction under an advisory lock (concurrent callers wait, then skip). Idempotent. Records
 * them in `_prisma_migrations` exactly as `prisma migrate deploy` would.
 * @throws {TierUnavailableError} when the database cannot be reached (the message names
 *   host:port when the driver reports them) or goes away meanwhile; the original is its `cause`.
 *   Migrations applied before that stay applied, and calling again resumes.
 * @throws {TierUnavailableError} when no schema on the connection's search_path exists (e.g. the
 *   schema given to `connectPostgres` or in `?schema=`): the message names it and says to create
 *   it. `migrate` does not create schemas.
 * @throws when a recorded migration's checksum differs from the shipped file (edited history)
 */
export async function migrate(prisma: PrismaLike): Promise<MigrateResult> {
  try {
    return await apply(prisma)
  } catch (error) {
    // e.g. "postgres migrate failed: the database is unreachable at 127.0.0.1:5432"
    throw (isUnavailable(error) && tierError(error, 'migrate')) || error
  }
}

async function apply(prisma: PrismaLike): Promise<MigrateResult> {
  // Created under the same lock as the migrations: concurrent callers would otherwise race on it.
  await prisma.$transaction(async (tx) => {
    await tx.$queryRawUnsafe(
      `SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtext('actor-cache-migrate'))) AS locked`,
    )
    await requireSchema(tx)
    await tx.$executeRawUnsafe(BOOKKEEPING)
  }, MIGRATE_TX)
  const result: MigrateResult = { applied: [], skipped: [] }
  for (const m of await listMigrations()) {
    const done = await prisma.$transaction(async (tx) => {
      await tx.$queryRawUnsafe(
        `SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtext('actor-cache-migrate'))) AS locked`,
      )
      const rows = await tx.$queryRawUnsafe<{ checksum: string }[]>(
        `SELECT checksum FROM "_prisma_migrations" WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL`,
        m.name,
      )
      if (rows.length > 0) {
        if (rows[0]?.checksum !== m.checksum) {
          throw new Error(
            `migration ${m.name} was applied with a different checksum: the file has been edited since`,
          )
        }
        return false
      }
      const statements = splitStatements(m.sql)
      for (const statement of statements) await tx.$executeRawUnsafe(statement)
      await tx.$executeRawUnsafe(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ($1, $2, now(), $3, $4)`,
        randomUUID(),
        m.checksum,
        m.name,
        statements.length,
      )
      return true
    }, MIGRATE_TX)
    ;(done ? result.applied : result.skipped).push(m.name)
  }
  return result
}

/**
 * Fails with a message that says what to do when the search_path names no existing schema, where
 * PostgreSQL would only say "no schema has been selected to create in" (3F000).
 */
async function requireSchema(tx: PrismaTransaction): Promise<void> {
  const rows = await tx.$queryRawUnsafe<{ schema: string | null; path: string }[]>(
    `SELECT current_schema() AS schema, current_setting('search_path') AS path`,
  )
  const row = rows[0]
  if (row === undefined || row.schema !== null) return
  const first =
    row.path
      .split(',')[0]
      ?.trim()
      .replace(/^"(.*)"$/, '$1') ?? ''
  const name = first === '' || first === '$user' ? 'your_schema' : first
  throw new TierUnavailableError(
    `postgres migrate failed: no schema on the search_path (${row.path}) exists. Create it first ` +
      `(CREATE SCHEMA "${name}"), or connect with a schema that exists`,
    { tier: 'postgres' },
  )
}
