/**
 * The failure classifier, on errors captured from real failures (PostgreSQL through Prisma's
 * adapter, raw `pg`, PGlite) and, as extras, on objects shaped like Prisma's. The crash of a
 * server under a statement (Prisma's "Server has closed the connection.") is captured in
 * crash.test.ts, which needs a server of its own.
 */
import { ConflictError, TierUnavailableError } from '@actor-cache/core'
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { classifyFailure, isUnavailable, sqlState } from '../src/classify-error.js'
import { PrismaClient } from '../src/generated/prisma/client.js'
import { isUnavailable as exported } from '../src/index.js'
import { DATABASE_URL, pglite, postgres, type TestDb } from './db.js'
import { waitFor } from './pg-cluster.js'

/** What `fn` rejects with. */
async function failure(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn()
  } catch (error) {
    return error
  }
  throw new Error('expected a failure')
}

function kind(error: unknown): string | undefined {
  return (error as { meta?: { driverAdapterError?: { cause?: { kind?: string } } } }).meta
    ?.driverAdapterError?.cause?.kind
}

describe('classifying real failures through Prisma', () => {
  let db: TestDb
  let closed: PrismaClient
  beforeAll(async () => {
    db = await postgres() // a fresh schema: no tables
    // nothing listens on port 1
    closed = new PrismaClient({
      adapter: new PrismaPg({
        connectionString: 'postgresql://postgres@127.0.0.1:1/none',
        // the refusal is immediate; a short bound would turn a stalled machine into a timeout
        connectionTimeoutMillis: 120_000,
      }),
    })
  })
  afterAll(async () => {
    await closed?.$disconnect()
    await db?.drop()
  })

  it('a closed port is unavailable, in a raw query and in a transaction', async () => {
    const raw = await failure(() => closed.$queryRawUnsafe('SELECT 1'))
    expect(raw).toMatchObject({ code: 'P2010' })
    expect(kind(raw)).toBe('DatabaseNotReachable')
    expect(classifyFailure(raw)).toBe('unavailable')
    const tx = await failure(() => closed.$transaction(async (t) => t.$queryRawUnsafe('SELECT 1')))
    expect(tx).toMatchObject({ code: 'P1001' })
    expect(classifyFailure(tx)).toBe('unavailable')
    expect(exported(tx)).toBe(true)
  })

  it('a missing table or column is unmigrated', async () => {
    const table = await failure(() => db.prisma.$queryRawUnsafe('SELECT key FROM ac_cache_entries'))
    expect(kind(table)).toBe('TableDoesNotExist')
    expect(sqlState(table)).toBe('42P01')
    expect(classifyFailure(table)).toBe('unmigrated')
    await db.prisma.$executeRawUnsafe('CREATE TABLE ac_cache_entries (key TEXT)')
    const column = await failure(() =>
      db.prisma.$queryRawUnsafe('SELECT deleted FROM ac_cache_entries'),
    )
    expect(kind(column)).toBe('ColumnNotFound')
    expect(classifyFailure(column)).toBe('unmigrated')
    await db.prisma.$executeRawUnsafe('DROP TABLE ac_cache_entries')
  })

  it('a refused statement is a statement error, whatever its text says', async () => {
    const raised = await failure(() =>
      db.prisma.$executeRawUnsafe(
        `DO $$ BEGIN RAISE EXCEPTION 'connection refused: Connection terminated'; END $$`,
      ),
    )
    expect(sqlState(raised)).toBe('P0001')
    expect(classifyFailure(raised)).toBe('statement')
    const cast = await failure(() =>
      db.prisma.$queryRawUnsafe(`SELECT 'Connection terminated'::int AS n`),
    )
    expect(kind(cast)).toBe('InvalidInputValue')
    expect((cast as Error).message).toMatch(/Connection terminated/)
    expect(classifyFailure(cast)).toBe('statement')
  })

  it('PGlite: a missing table is unmigrated, a closed database unavailable (text only)', async () => {
    const lite = await pglite()
    const table = await failure(() => lite.prisma.$queryRawUnsafe('SELECT 1 FROM ac_dead_letters'))
    expect(classifyFailure(table)).toBe('unmigrated')
    await lite.drop()
    const gone = await failure(() => lite.prisma.$queryRawUnsafe('SELECT 1'))
    expect(kind(gone)).toBeUndefined()
    expect(classifyFailure(gone)).toBe('unavailable')
  }, 240_000) // PGlite boots slowly on a loaded machine
})

describe('classifying raw pg errors (no Prisma structure)', () => {
  it('uses the socket code, the SQLSTATE, and text only for errors without either', async () => {
    const refused = await failure(() =>
      new pg.Client({ connectionString: 'postgresql://postgres@127.0.0.1:1/none' }).connect(),
    )
    expect(refused).toMatchObject({ code: 'ECONNREFUSED' })
    expect(classifyFailure(refused)).toBe('unavailable')

    const client = new pg.Client({ connectionString: DATABASE_URL })
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await Promise.all([client.connect(), admin.connect()])
    client.on('error', () => undefined) // the terminated connection also reports here
    try {
      expect(classifyFailure(await failure(() => client.query('SELECT * FROM nope_nope')))).toBe(
        'unmigrated',
      )
      expect(classifyFailure(await failure(() => client.query('SELECT 1/0')))).toBe('statement')
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      const pid = rows[0]?.pid
      const sleeping = failure(() => client.query('SELECT pg_sleep(120)'))
      await waitFor('the statement runs', async () => {
        const r = await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`,
          [pid],
        )
        return r.rowCount === 1
      })
      await admin.query('SELECT pg_terminate_backend($1)', [pid])
      // the server's goodbye (57P01) to the running statement, then pg's own error without a
      // code for the next one
      const terminated = [await sleeping, await failure(() => client.query('SELECT 1'))]
      expect(terminated.map(classifyFailure)).toEqual(['unavailable', 'unavailable'])
      expect((terminated[1] as { code?: unknown }).code).toBeUndefined()
    } finally {
      await admin.end()
      await client.end().catch(() => undefined)
    }
  }, 240_000)
})

describe('classifying Prisma-shaped errors (extras)', () => {
  const prismaError = (cause: object, code = 'P2010') =>
    Object.assign(new Error('\nInvalid `prisma.$queryRawUnsafe()` invocation:\n\n\nfailed'), {
      code,
      meta: { driverAdapterError: Object.assign(new Error('adapter'), { cause }) },
    })

  it('every connection-level kind is unavailable', () => {
    for (const k of [
      'ConnectionClosed',
      'DatabaseNotReachable',
      'SocketTimeout',
      'TooManyConnections',
      'TransactionAlreadyClosed',
      'DatabaseDoesNotExist',
      'DatabaseAccessDenied',
      'AuthenticationFailed',
      'TlsConnectionError',
    ]) {
      expect([k, classifyFailure(prismaError({ kind: k }))]).toEqual([k, 'unavailable'])
    }
  })

  it('kind postgres goes by SQLSTATE; row-level kinds are statements', () => {
    const pgKind = (code: string) => prismaError({ kind: 'postgres', code, originalCode: code })
    expect(classifyFailure(pgKind('57P01'))).toBe('unavailable') // admin shutdown
    expect(classifyFailure(pgKind('08006'))).toBe('unavailable')
    expect(classifyFailure(pgKind('53100'))).toBe('unavailable') // disk full
    expect(classifyFailure(pgKind('23514'))).toBe('statement') // check violation
    for (const k of ['UniqueConstraintViolation', 'ValueOutOfRange', 'LengthMismatch']) {
      expect(classifyFailure(prismaError({ kind: k }))).toBe('statement')
    }
    expect(classifyFailure(prismaError({ kind: 'TableDoesNotExist' }))).toBe('unmigrated')
  })

  it('Prisma codes without an adapter error, typed errors, and unstructured text', () => {
    expect(classifyFailure(Object.assign(new Error('x'), { code: 'P1017' }))).toBe('unavailable')
    expect(classifyFailure(Object.assign(new Error('x'), { errorCode: 'P1001' }))).toBe(
      'unavailable',
    )
    expect(classifyFailure(new Error('Connection terminated unexpectedly'))).toBe('unavailable')
    expect(classifyFailure(new Error('syntax error at or near "x"'))).toBe('statement')
    expect(classifyFailure(new ConflictError(1, 2))).toBe('statement')
    expect(isUnavailable(new TierUnavailableError('already typed'))).toBe(true)
  })
})
