/**
 * The change logs the tests run against: in-process, PostgreSQL (a schema of its own per call)
 * and embedded PGlite. A test that needs PostgreSQL and cannot reach it fails, naming what to
 * start.
 */
import { randomUUID } from 'node:crypto'
import { type ChangeLog, createMemoryChangeLog } from '@actor-cache/core'
import { createPrismaChangeLog, migrate } from '@actor-cache/prisma-store'
import {
  connectPostgres,
  openEmbeddedStore,
  type PrismaClient,
} from '@actor-cache/prisma-store/client'

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

export interface TestLog {
  name: 'memory' | 'postgres' | 'pglite'
  log: ChangeLog
  /** SQL on the log's tables (to forge records); absent for the in-process log. */
  sql?: (query: string, ...params: unknown[]) => Promise<unknown>
  close(): Promise<void>
}

export async function memoryLog(): Promise<TestLog> {
  return { name: 'memory', log: createMemoryChangeLog(), close: async () => {} }
}

/** A migrated database: PostgreSQL in a schema of its own, or in-memory PGlite. */
export interface TestDatabase {
  prisma: PrismaClient
  close(): Promise<void>
}

async function postgresDatabase(max: number): Promise<TestDatabase> {
  const schema = `ac_tracker_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  let admin: PrismaClient | undefined
  try {
    admin = await connectPostgres(DATABASE_URL, { connectionTimeoutMillis: 3000 })
    await admin.$executeRawUnsafe(`CREATE SCHEMA "${schema}"`)
  } catch (error) {
    await admin?.$disconnect()
    throw new Error(
      `these tests need PostgreSQL at ${DATABASE_URL} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  const prisma = await connectPostgres(DATABASE_URL, { schema, max })
  await migrate(prisma)
  return {
    prisma,
    async close() {
      await prisma.$disconnect()
      await admin?.$executeRawUnsafe(`DROP SCHEMA "${schema}" CASCADE`)
      await admin?.$disconnect()
    },
  }
}

export async function openDatabase(
  engine: 'postgres' | 'pglite',
  options: { max?: number } = {},
): Promise<TestDatabase> {
  if (engine === 'postgres') return postgresDatabase(options.max ?? 10)
  const embedded = await openEmbeddedStore()
  return { prisma: embedded.prisma, close: () => embedded.close() }
}

export async function postgresLog(options: { max?: number } = {}): Promise<TestLog> {
  const db = await openDatabase('postgres', options)
  return {
    name: 'postgres',
    log: createPrismaChangeLog({ prisma: db.prisma }),
    sql: (query, ...params) => db.prisma.$executeRawUnsafe(query, ...params),
    close: () => db.close(),
  }
}

export async function pgliteLog(): Promise<TestLog> {
  const embedded = await openEmbeddedStore()
  return {
    name: 'pglite',
    log: embedded.changeLog,
    sql: (query, ...params) => embedded.prisma.$executeRawUnsafe(query, ...params),
    close: () => embedded.close(),
  }
}

/** Every kind of log, for suites that run against each. */
export const LOGS = [
  ['memory', memoryLog],
  ['postgres', postgresLog],
  ['pglite', pgliteLog],
] as const

/**
 * Waits until the server has no session named `app`: a killed process's statements (or COMMIT)
 * may still run on the server until then (bounded; only a hang reaches the bound).
 */
export async function sessionsGone(db: TestDatabase, app: string): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const rows = await db.prisma.$queryRawUnsafe<{ n: bigint }[]>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1',
      app,
    )
    if (Number(rows[0]?.n ?? 0) === 0) return
    if (Date.now() > deadline) throw new Error(`the killed writer's sessions (${app}) never ended`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
