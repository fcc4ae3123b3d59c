import { createServer, type Socket } from 'node:net'
import { ActorCacheError } from '@actor-cache/core'
import { PrismaPg } from '@prisma/adapter-pg'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { PrismaClient } from '../src/generated/prisma/client.js'
import {
  createPrismaChangeLog,
  createPrismaDeadLetters,
  createPrismaStore,
  listMigrations,
  migrate,
} from '../src/index.js'
import { connectedPostgres, pglite, postgres, type TestDb } from './db.js'

describe('an unreachable database', () => {
  it('fails every operation with E_TIER_UNAVAILABLE within the bound, never hanging', async () => {
    // nothing listens on port 1
    const prisma = new PrismaClient({
      adapter: new PrismaPg({
        connectionString: 'postgresql://postgres@127.0.0.1:1/none',
        connectionTimeoutMillis: 300,
      }),
    })
    const store = createPrismaStore({ prisma, timeout: 1000 }).namespace('ns')
    const log = createPrismaChangeLog({ prisma, timeout: 1000 })
    for (const op of [
      () => store.get('k'),
      () => store.set('k', 1),
      () => store.clear(),
      () => log.history('t', 'e'),
    ]) {
      await expect(op()).rejects.toMatchObject({ code: 'E_TIER_UNAVAILABLE', tier: 'postgres' })
    }
    await prisma.$disconnect()
  })

  it('bounds a call to a server that accepts and never answers by its timeout', async () => {
    // a hang would outlive the test's own timeout; the store's deadline ends the call first
    const sockets: Socket[] = []
    const silent = createServer((socket) => {
      sockets.push(socket)
    })
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const port = (silent.address() as { port: number }).port
    const prisma = new PrismaClient({
      adapter: new PrismaPg({ connectionString: `postgresql://postgres@127.0.0.1:${port}/none` }),
    })
    const store = createPrismaStore({ prisma, timeout: 500 }).namespace('ns')
    await expect(store.get('k')).rejects.toMatchObject({
      code: 'E_TIER_UNAVAILABLE',
      cause: { code: 'E_TIMEOUT' },
    })
    // the pool still waits for its connection: end it from the server side, then disconnect
    for (const socket of sockets) socket.destroy()
    await new Promise((r) => silent.close(r))
    await prisma.$disconnect().catch(() => undefined)
  })

  it('still rejects bad input before trying to connect', async () => {
    const prisma = new PrismaClient({
      adapter: new PrismaPg({
        connectionString: 'postgresql://postgres@127.0.0.1:1/none',
        connectionTimeoutMillis: 300,
      }),
    })
    const store = createPrismaStore({ prisma, timeout: 1000 }).namespace('ns')
    await expect(store.set('', 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    await expect(store.set('k', () => 1)).rejects.toMatchObject({ code: 'E_SERIALIZATION' })
    await expect(store.deletePattern('a[')).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    expect(() => createPrismaStore({ prisma, timeout: 0 })).toThrow(/timeout/)
    await prisma.$disconnect()
  })
})

/** Generous: PGlite boots and runs slowly on a loaded 2-core machine. Only stops a hang. */
const SLOW = 120_000

describe('migrate() against a closed port', () => {
  it('fails with E_TIER_UNAVAILABLE naming host:port, the original as cause', async () => {
    const prisma = new PrismaClient({
      adapter: new PrismaPg({
        connectionString: 'postgresql://postgres@127.0.0.1:1/none',
        // the refusal is immediate; a short bound would turn a stalled machine into a timeout
        connectionTimeoutMillis: SLOW,
      }),
    })
    const error = await migrate(prisma).catch((e: unknown) => e)
    await prisma.$disconnect()
    expect(error).toBeInstanceOf(ActorCacheError)
    expect(error).toMatchObject({ code: 'E_TIER_UNAVAILABLE', tier: 'postgres' })
    expect((error as Error).message).toMatch(/unreachable at 127\.0\.0\.1:1\b/)
    expect((error as Error).cause).toMatchObject({ code: 'P1001' })
  })
})

for (const [name, open] of [
  ['postgres', postgres],
  ['postgres, connectPostgres', connectedPostgres],
  ['pglite', pglite],
] as const) {
  describe(`a store on an unmigrated database (${name})`, () => {
    let db: TestDb | undefined
    afterEach(async () => {
      await db?.drop()
      db = undefined
    }, SLOW)

    /** Every store path, each expected to fail with a hint to run migrate(). */
    async function expectMigrateHint(d: TestDb): Promise<void> {
      const transactions = vi.spyOn(d.prisma, '$transaction')
      // long timeouts: the failure under test is the missing table, not a deadline
      const store = createPrismaStore({ prisma: d.prisma, timeout: SLOW }).namespace('ns')
      const log = createPrismaChangeLog({ prisma: d.prisma, timeout: SLOW })
      const letters = createPrismaDeadLetters({ prisma: d.prisma, timeout: SLOW })
      const ops: [string, () => Promise<unknown>][] = [
        ['get', () => store.get('k')],
        ['exists', () => store.exists('k')],
        ['set', () => store.set('k', 1)],
        ['cas', () => store.set('k', 1, { expectedVersion: 0 })],
        ['setMany', () => store.setMany([{ key: 'a', value: 1, version: 1 }])],
        ['delete', () => store.delete('k')],
        ['history', () => log.history('t', 'e')],
        [
          'append',
          () =>
            log.append([
              {
                id: 'c1',
                entityType: 't',
                entityId: 'e',
                changeType: 'create',
                oldValue: null,
                newValue: 1,
                timestamp: Date.now(),
                userId: 'u',
                systemId: 's',
                version: 1,
              },
            ]),
        ],
        ['deadLetters', () => letters.list()],
      ]
      for (const [op, run] of ops) {
        const error = await run().catch((e: unknown) => e)
        expect([op, error instanceof ActorCacheError && error.code]).toEqual([
          op,
          'E_TIER_UNAVAILABLE',
        ])
        expect((error as Error).message).toMatch(/run migrate\(prisma\)/)
      }
      // the versioned batch did not go looking for refused rows
      expect(transactions).not.toHaveBeenCalled()
    }

    it(
      'fails every operation with E_TIER_UNAVAILABLE saying to run migrate()',
      async () => {
        db = await open()
        await expectMigrateHint(db)
      },
      3 * SLOW,
    )

    it(
      'says the same when an older version migrated it (a column is missing)',
      async () => {
        db = await open()
        await migrate(db.prisma)
        // as before the tombstones migration
        const tombstones = (await listMigrations()).find((m) => m.name.endsWith('_tombstones'))
        await db.prisma.$executeRawUnsafe('ALTER TABLE ac_cache_entries DROP COLUMN deleted')
        await db.prisma.$executeRawUnsafe(
          'DELETE FROM "_prisma_migrations" WHERE migration_name = $1',
          tombstones?.name,
        )
        const store = createPrismaStore({ prisma: db.prisma, timeout: SLOW }).namespace('ns')
        await expect(store.set('k', 1)).rejects.toMatchObject({
          code: 'E_TIER_UNAVAILABLE',
          message: expect.stringMatching(/"deleted".*run migrate\(prisma\)/),
        })
        expect(await migrate(db.prisma)).toMatchObject({ applied: [tombstones?.name] })
        expect(await store.set('k', 1)).toEqual({ applied: true, version: 1 })
      },
      3 * SLOW,
    )
  })
}
