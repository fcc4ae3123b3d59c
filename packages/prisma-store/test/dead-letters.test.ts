import type { DeadLetter, QueuedWrite } from '@actor-cache/core'
import { PrismaPg } from '@prisma/adapter-pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { PrismaClient } from '../src/generated/prisma/client.js'
import { createPrismaDeadLetters, migrate, type PrismaDeadLetters } from '../src/index.js'
import { pglite, postgres, type TestDb } from './db.js'

const T0 = 1_764_000_000_123

function write(namespace: string, key: string, value: unknown = { hp: 1 }): QueuedWrite {
  return {
    namespace,
    key,
    op: 'set',
    value,
    version: 3,
    expiresAt: null,
    tags: ['t1'],
    enqueuedAt: T0 - 1000,
  }
}

function letter(namespace: string, key: string, overrides: Partial<DeadLetter> = {}): DeadLetter {
  return {
    namespace,
    key,
    write: write(namespace, key),
    error: 'value too long for type character varying(10)',
    attempts: 5,
    firstSeen: T0,
    lastSeen: T0 + 250,
    ...overrides,
  }
}

/** A client for a port nothing listens on: any query would fail with E_TIER_UNAVAILABLE. */
function unreachable(): PrismaClient {
  return new PrismaClient({
    adapter: new PrismaPg({
      connectionString: 'postgresql://postgres@127.0.0.1:1/none',
      connectionTimeoutMillis: 300,
    }),
  })
}

for (const [name, open] of [
  ['postgres', postgres],
  ['pglite', pglite],
] as const) {
  describe(`dead letters (${name})`, () => {
    let db: TestDb
    let sink: PrismaDeadLetters
    const rows = async (): Promise<number> => {
      const r = await db.prisma.$queryRawUnsafe<{ n: bigint }[]>(
        'SELECT count(*) AS n FROM ac_dead_letters',
      )
      return Number(r[0]?.n)
    }

    beforeAll(async () => {
      db = await open()
      await migrate(db.prisma)
      sink = createPrismaDeadLetters({ prisma: db.prisma })
    })
    afterAll(() => db?.drop())
    beforeEach(async () => {
      await db.prisma.$executeRawUnsafe('DELETE FROM ac_dead_letters')
    })

    it('round-trips a write whose value holds a Date, a Map and a bigint', async () => {
      const value = {
        at: new Date('2026-11-25T10:11:12.345Z'),
        inventory: new Map<string, unknown>([
          ['sword', { qty: 2n }],
          ['shield', new Date(0)],
        ]),
        gold: 2n ** 70n,
      }
      const set = letter('primary_core', 'actor:1', {
        write: { ...write('primary_core', 'actor:1', value), changeId: 'c-1' },
      })
      const del = letter('primary_core', 'actor:2', {
        write: { ...write('primary_core', 'actor:2'), op: 'delete', value: undefined },
        error: 'nul \u0000 inside',
        attempts: 0,
      })
      delete (del.write as { value?: unknown }).value
      await sink.add([set, del])
      const [a, b, ...rest] = await sink.list()
      expect(rest).toEqual([])
      expect(a?.id).toMatch(/^\d+$/)
      expect(Object.isFrozen(a)).toBe(true)
      expect(a).toEqual({ ...set, id: a?.id })
      const got = a?.write.value as typeof value
      expect(got.at).toBeInstanceOf(Date)
      expect(got.at.getTime()).toBe(value.at.getTime())
      expect(got.inventory).toBeInstanceOf(Map)
      expect(got.inventory).toEqual(value.inventory)
      expect(typeof got.gold).toBe('bigint')
      expect(got.gold).toBe(2n ** 70n)
      expect(a?.firstSeen).toBe(T0)
      expect(a?.lastSeen).toBe(T0 + 250)
      // PostgreSQL text holds no NUL: it is marked, the rest kept
      expect(b).toEqual({ ...del, error: 'nul \uFFFD inside', id: b?.id })
    })

    it('lists oldest first, filtered by namespace and key, up to the limit', async () => {
      await sink.add([letter('a', 'k1'), letter('b', 'k1'), letter('a', 'k2')])
      await sink.add([letter('a', 'k1', { attempts: 9 }), letter('b', 'k2')])
      const all = await sink.list()
      expect(all.map((l) => `${l.namespace}/${l.key}`)).toEqual([
        'a/k1',
        'b/k1',
        'a/k2',
        'a/k1',
        'b/k2',
      ])
      const ids = all.map((l) => BigInt(l.id))
      expect(ids).toEqual([...ids].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)))
      expect(new Set(ids).size).toBe(5)

      const a = await sink.list({ namespace: 'a' })
      expect(a.map((l) => l.id)).toEqual([all[0]?.id, all[2]?.id, all[3]?.id])
      const ak1 = await sink.list({ namespace: 'a', key: 'k1' })
      expect(ak1.map((l) => l.attempts)).toEqual([5, 9])
      expect(await sink.list({ namespace: 'b', key: 'k3' })).toEqual([])
      expect(await sink.list({ namespace: 'c' })).toEqual([])

      expect((await sink.list({ limit: 2 })).map((l) => l.id)).toEqual([all[0]?.id, all[1]?.id])
      expect((await sink.list({ namespace: 'a', limit: 1 })).map((l) => l.id)).toEqual([all[0]?.id])
    })

    it('removes by id and counts only letters that existed', async () => {
      await sink.add([letter('a', 'k1'), letter('a', 'k2'), letter('a', 'k3')])
      const [l1, l2, l3] = await sink.list()
      const id1 = l1?.id as string
      const id2 = l2?.id as string
      expect(await sink.remove([id1, id2, id1, '999999999999'])).toBe(2)
      expect(await sink.remove([id1, id2])).toBe(0)
      expect(await sink.remove([])).toBe(0)
      expect((await sink.list()).map((l) => l.id)).toEqual([l3?.id])
      expect(await sink.remove([l3?.id as string])).toBe(1)
      expect(await rows()).toBe(0)
    })

    it('adds nothing for an empty array', async () => {
      await sink.add([])
      expect(await rows()).toBe(0)
    })

    it('stores all letters of a batch or none', async () => {
      await db.prisma.$executeRawUnsafe(
        `ALTER TABLE ac_dead_letters ADD CONSTRAINT test_no_poison CHECK (error <> 'poison')`,
      )
      try {
        await expect(
          sink.add([letter('a', 'k1'), letter('a', 'k2', { error: 'poison' }), letter('a', 'k3')]),
        ).rejects.toThrow(/test_no_poison|check constraint/i)
        expect(await rows()).toBe(0)
      } finally {
        await db.prisma.$executeRawUnsafe(
          'ALTER TABLE ac_dead_letters DROP CONSTRAINT test_no_poison',
        )
      }
    })

    it('writes nothing when one letter of a batch is invalid', async () => {
      await expect(
        sink.add([letter('a', 'k1'), letter('a', 'k2', { attempts: -1 }), letter('a', 'k3')]),
      ).rejects.toMatchObject({ code: 'E_INVALID_OPTION', option: 'attempts' })
      await expect(sink.add([letter('a', 'k1'), letter('bad ns', 'k2')])).rejects.toMatchObject({
        code: 'E_INVALID_KEY',
      })
      expect(await rows()).toBe(0)
    })
  })
}

describe('dead letters: bad input', () => {
  let prisma: PrismaClient
  let sink: PrismaDeadLetters
  beforeAll(() => {
    prisma = unreachable()
    sink = createPrismaDeadLetters({ prisma, timeout: 1000 })
  })
  afterAll(() => prisma?.$disconnect())

  // Against a closed port: reaching the database would fail with E_TIER_UNAVAILABLE instead.
  it('rejects bad letters before any database access', async () => {
    const bad: [Partial<DeadLetter> & Record<string, unknown>, object][] = [
      [{ namespace: 'bad ns' }, { code: 'E_INVALID_KEY' }],
      [{ namespace: '' }, { code: 'E_INVALID_KEY' }],
      [{ key: '' }, { code: 'E_INVALID_KEY' }],
      [{ key: 'a\nb' }, { code: 'E_INVALID_KEY' }],
      [{ attempts: -1 }, { code: 'E_INVALID_OPTION', option: 'attempts' }],
      [{ attempts: 1.5 }, { code: 'E_INVALID_OPTION', option: 'attempts' }],
      [{ attempts: 2 ** 31 }, { code: 'E_INVALID_OPTION', option: 'attempts' }],
      [{ firstSeen: Number.NaN }, { code: 'E_INVALID_OPTION', option: 'firstSeen' }],
      [{ lastSeen: Infinity }, { code: 'E_INVALID_OPTION', option: 'lastSeen' }],
      [{ lastSeen: '1' as unknown as number }, { code: 'E_INVALID_OPTION', option: 'lastSeen' }],
      [{ error: undefined as unknown as string }, { code: 'E_INVALID_OPTION', option: 'error' }],
      [{ write: null as unknown as QueuedWrite }, { code: 'E_INVALID_OPTION', option: 'write' }],
      [
        { write: { ...write('a', 'k'), value: () => 1 } },
        { code: 'E_SERIALIZATION' }, // the serializer refuses it, still before I/O
      ],
    ]
    for (const [overrides, expected] of bad) {
      await expect(sink.add([letter('a', 'k', overrides)])).rejects.toMatchObject(expected)
    }
    await expect(sink.add([null as unknown as DeadLetter])).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
    await expect(sink.add('x' as unknown as DeadLetter[])).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'letters',
    })
    await sink.add([]) // nothing to do: no connection attempted
  })

  it('rejects bad queries and ids before any database access', async () => {
    await expect(sink.list({ namespace: 'bad ns' })).rejects.toMatchObject({
      code: 'E_INVALID_KEY',
    })
    await expect(sink.list({ key: 'k' })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'key',
    })
    for (const limit of [0, -1, 1.5, 10_001]) {
      await expect(sink.list({ limit })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        option: 'limit',
      })
    }
    for (const id of ['abc', '', '-1', '1.5', ' 1', '0x10', '9223372036854775808', 7]) {
      await expect(sink.remove(['1', id as string])).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        option: 'ids',
      })
    }
    await expect(sink.remove('1' as unknown as string[])).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
    expect(await sink.remove([])).toBe(0)
  })

  it('refuses bad options', () => {
    expect(() => createPrismaDeadLetters({ prisma, timeout: 0 })).toThrow(/timeout/)
    expect(() => createPrismaDeadLetters({ prisma: {} as PrismaClient })).toThrow(/prisma/)
    expect(() => createPrismaDeadLetters(undefined as never)).toThrow(/options/)
  })

  it('fails with E_TIER_UNAVAILABLE within the bound when the database is unreachable', async () => {
    for (const op of [
      () => sink.add([letter('a', 'k')]),
      () => sink.list({ namespace: 'a' }),
      () => sink.remove(['1']),
    ]) {
      await expect(op()).rejects.toMatchObject({ code: 'E_TIER_UNAVAILABLE', tier: 'postgres' })
    }
  })
})
