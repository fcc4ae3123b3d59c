/**
 * Tracked writes racing each other on PostgreSQL (PGlite has one connection: nothing races there),
 * and a transaction whose connection dies after its write statement.
 */
import { ConflictError, TierUnavailableError } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectPostgres, type PrismaClient } from '../src/client.js'
import { createPrismaChangeLog, createPrismaStore, migrate, type PrismaTier } from '../src/index.js'
import { DATABASE_URL, postgres, type TestDb } from './db.js'
import { type Built, builder, hooked, isRead, isWrite, storedRow } from './tracked.js'

/** Only stops a hang: nothing here is timed. */
const BOUND = 60_000
const POOL = 12

type Hp = { hp: number }

describe('tracked writes racing on PostgreSQL', () => {
  let db: TestDb
  let prisma: PrismaClient
  let tier: PrismaTier
  const log = () => createPrismaChangeLog({ prisma })
  beforeAll(async () => {
    db = await postgres()
    await migrate(db.prisma)
    prisma = await connectPostgres(DATABASE_URL, { schema: db.schema, max: POOL })
    // long bounds: a transaction may wait for a connection and for the row's lock
    tier = createPrismaStore({ prisma, timeout: BOUND })
  })
  afterAll(async () => {
    await prisma?.$disconnect()
    await db?.drop()
  })

  it('lets exactly one of 64 concurrent creates of a key through; the rest fail with ConflictError', async () => {
    const s = tier.namespace<Hp>('create')
    const seen: Built[] = []
    const set = { kind: 'set', value: { hp: 1 } } as const
    const createOnly = builder('create', 'k', set, { seen })
    const results = await Promise.allSettled(
      Array.from({ length: 64 }, () =>
        s.writeWithChange('k', set, (prior) => {
          // as the state tracker refuses a create of an entity that exists
          if (prior.exists) throw new ConflictError(0, prior.version, { key: 'k' })
          return createOnly(prior)
        }),
      ),
    )
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r) => r.status === 'rejected')
    expect(won.length).toBe(1)
    expect(lost.map((r) => r.reason)).toEqual(Array(63).fill(expect.any(ConflictError)))
    const history = await log().history('create', 'k')
    expect(history.length).toBe(1)
    expect(await storedRow(prisma, 'create', 'k')).toMatchObject({
      version: 1,
      changeHash: history[0]?.hash,
    })
  })

  it('fails a create that lost the insert to a writer that committed after its read', async () => {
    const s = tier.namespace<Hp>('lost')
    const set = { kind: 'set', value: { hp: 1 } } as const
    const other = { kind: 'set', value: { hp: 2 } } as const
    let winner: Awaited<ReturnType<typeof s.writeWithChange>> | undefined
    // after this transaction's read found no row, another creates and commits the key
    const paused = hooked(prisma, async (step) => {
      if (isRead(step)) winner = await s.writeWithChange('k', other, builder('lost', 'k', other))
    })
    const late = createPrismaStore({ prisma: paused, timeout: BOUND }).namespace<Hp>('lost')
    const seen: Built[] = []
    const error = await late
      .writeWithChange('k', set, builder('lost', 'k', set, { seen }))
      .catch((e: unknown) => e)
    expect(seen[0]?.prior).toMatchObject({ exists: false, version: 0 })
    // the row write did not apply (it is not the change log refusing version 1: that has a cause)
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({
      expectedVersion: 0,
      actualVersion: 1,
      namespace: 'lost',
      key: 'k',
    })
    expect((error as Error).cause).toBeUndefined()
    expect(await s.get('k')).toMatchObject({ value: { hp: 2 }, version: 1 })
    expect((await log().history('lost', 'k')).map((r) => r.id)).toEqual([winner?.change?.id])
  })

  it('serializes 32 concurrent updates of a key: versions 1 to 33, each linked to the one before', async () => {
    const s = tier.namespace<Hp>('update')
    const first = { kind: 'set', value: { hp: 0 } } as const
    await s.writeWithChange('k', first, builder('update', 'k', first))
    const results = await Promise.all(
      Array.from({ length: 32 }, (_, i) => {
        const set = { kind: 'set', value: { hp: i + 1 } } as const
        return s.writeWithChange('k', set, builder('update', 'k', set))
      }),
    )
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 32 }, (_, i) => i + 2),
    )
    const history = await log().history('update', 'k')
    expect(history.map((r) => r.version)).toEqual(Array.from({ length: 33 }, (_, i) => i + 1))
    for (const [i, r] of history.entries()) {
      expect(r.prevHash ?? null).toBe(i === 0 ? null : history[i - 1]?.hash)
      // each update starts from the value the one before wrote
      if (i > 0) expect(r.oldValue).toEqual(history[i - 1]?.newValue)
    }
    expect(await storedRow(prisma, 'update', 'k')).toMatchObject({
      version: 33,
      changeHash: history[32]?.hash,
    })
  })

  it('leaves neither row nor record when the connection is killed after the write statement', async () => {
    const s = tier.namespace<Hp>('killed')
    const set = { kind: 'set', value: { hp: 1 } } as const
    await s.writeWithChange('k', set, builder('killed', 'k', set))
    const before = await storedRow(prisma, 'killed', 'k')
    let terminated: boolean | undefined
    const dying = hooked(prisma, async (step) => {
      if (!isWrite(step)) return
      const [me] = await step.tx.$queryRawUnsafe<{ pid: number }[]>(
        'SELECT pg_backend_pid() AS pid',
      )
      // from another connection; returns once the backend has exited, before COMMIT is sent
      const [done] = await db.prisma.$queryRawUnsafe<{ ok: boolean }[]>(
        'SELECT pg_terminate_backend($1::int, 60000) AS ok',
        me?.pid,
      )
      terminated = done?.ok
    })
    const store = createPrismaStore({ prisma: dying, timeout: BOUND })
    for (const [key, write] of [
      ['k', { kind: 'set', value: { hp: 2 } }],
      ['k', { kind: 'delete' }],
      ['new', { kind: 'set', value: { hp: 1 } }],
    ] as const) {
      terminated = undefined
      const error = await store
        .namespace<Hp>('killed')
        .writeWithChange(key, write, builder('killed', key, write))
        .catch((e: unknown) => e)
      expect(terminated).toBe(true)
      expect(error).toBeInstanceOf(TierUnavailableError)
    }
    expect(await storedRow(prisma, 'killed', 'k')).toEqual(before)
    expect(await storedRow(prisma, 'killed', 'new')).toBeUndefined()
    expect((await log().history('killed', 'k')).length).toBe(1)
    expect(await log().history('killed', 'new')).toEqual([])
    // the pool replaced the dead connection
    expect((await s.writeWithChange('k', set, builder('killed', 'k', set))).version).toBe(2)
  })
})
