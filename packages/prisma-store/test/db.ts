/**
 * Test databases: PostgreSQL at DATABASE_URL (each test file in its own schema), through a client
 * built as users build one (Prisma raw queries) or through `connectPostgres` (the store's
 * single-row statements on the adapter's pg pool), or in-memory PGlite. A test that needs
 * PostgreSQL and cannot reach it fails, naming what to start.
 */
import { randomUUID } from 'node:crypto'
import { PGlite } from '@electric-sql/pglite'
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaPGlite } from 'pglite-prisma-adapter'
import { connectPostgres } from '../src/connect-postgres.js'
import { PrismaClient } from '../src/generated/prisma/client.js'

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

export interface TestDb {
  prisma: PrismaClient
  engine: 'postgres' | 'pglite'
  schema?: string
  drop(): Promise<void>
}

/** A fresh schema on the PostgreSQL server, with a user-built client's search_path set to it. */
export async function postgres(): Promise<TestDb> {
  return inFreshSchema(
    (schema) =>
      new PrismaClient({
        // search_path for the store's SQL, schema for the generated client's own queries
        adapter: new PrismaPg(
          { connectionString: DATABASE_URL, options: `-c search_path=${schema}` },
          { schema },
        ),
      }),
  )
}

/**
 * A fresh schema on the PostgreSQL server, with a client of `connectPostgres` on it, connected:
 * the store's single-row statements take the adapter's pg pool from the first call.
 */
export async function connectedPostgres(): Promise<TestDb> {
  const db = await inFreshSchema((schema) => connectPostgres(DATABASE_URL, { schema }))
  await db.prisma.$connect()
  return db
}

async function inFreshSchema(
  open: (schema: string) => PrismaClient | Promise<PrismaClient>,
): Promise<TestDb> {
  const schema = `ac_test_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  const admin = new PrismaClient({
    adapter: new PrismaPg({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 }),
  })
  try {
    await admin.$executeRawUnsafe(`CREATE SCHEMA "${schema}"`)
  } catch (error) {
    await admin.$disconnect()
    throw new Error(
      `these tests need PostgreSQL at ${DATABASE_URL} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  const prisma = await open(schema)
  return {
    prisma,
    engine: 'postgres',
    schema,
    async drop() {
      await prisma.$disconnect()
      await admin.$executeRawUnsafe(`DROP SCHEMA "${schema}" CASCADE`)
      await admin.$disconnect()
    },
  }
}

/** An in-memory PGlite database. */
export async function pglite(): Promise<TestDb> {
  const db = new PGlite()
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) })
  return {
    prisma,
    engine: 'pglite',
    async drop() {
      await prisma.$disconnect()
      await db.close()
    },
  }
}
