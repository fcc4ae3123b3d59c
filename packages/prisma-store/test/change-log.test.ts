import { randomUUID } from 'node:crypto'
import { type ChangeRecord, ConflictError } from '@actor-cache/core'
import { PrismaPg } from '@prisma/adapter-pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../src/generated/prisma/client.js'
import { createPrismaChangeLog, migrate } from '../src/index.js'
import { pglite, postgres, type TestDb } from './db.js'

const change = (id: string, version: number, extra: Partial<ChangeRecord> = {}): ChangeRecord => ({
  id,
  entityType: 'primary_core',
  entityId: 'actor:1',
  changeType: version === 1 ? 'create' : 'update',
  oldValue: version === 1 ? null : { hp: version - 1 },
  newValue: { hp: version, at: new Date(0) },
  timestamp: 1_000 * version,
  userId: 'user:1',
  systemId: 'combat',
  version,
  ...extra,
})

for (const [name, open] of [
  ['postgres', postgres],
  ['pglite', pglite],
] as const) {
  describe(`change log on ${name}`, () => {
    let db: TestDb
    beforeAll(async () => {
      db = await open()
      await migrate(db.prisma)
    })
    afterAll(async () => {
      await db?.drop()
    })

    it('appends idempotently by id and refuses a second record for one version', async () => {
      const log = createPrismaChangeLog({ prisma: db.prisma })
      expect(await log.append([change('c1', 1), change('c2', 2)])).toEqual({
        appended: 2,
        duplicates: 0,
      })
      expect(await log.append([change('c2', 2), change('c3', 3)])).toEqual({
        appended: 1,
        duplicates: 1,
      })
      await expect(log.append([change('other', 3)])).rejects.toBeInstanceOf(ConflictError)
      await expect(log.append([change('c4', 4), change('c5', 4)])).rejects.toBeInstanceOf(
        ConflictError,
      )
      const history = await log.history('primary_core', 'actor:1')
      expect(history.map((r) => r.version)).toEqual([1, 2, 3])
      expect(history[1]).toMatchObject({
        id: 'c2',
        oldValue: { hp: 1 },
        newValue: { hp: 2, at: new Date(0) },
        timestamp: 2000,
      })
    })

    it('queries with filters and keyset cursors', async () => {
      const log = createPrismaChangeLog({ prisma: db.prisma })
      const records = Array.from({ length: 25 }, (_, i) =>
        change(`q${i + 1}`, i + 1, {
          entityId: 'actor:q',
          userId: i % 2 ? 'user:odd' : 'user:even',
        }),
      )
      await log.append(records)
      const seen: number[] = []
      let cursor: string | undefined
      do {
        const page = await log.query({
          entityId: 'actor:q',
          userId: 'user:odd',
          limit: 4,
          ...(cursor ? { cursor } : {}),
        })
        seen.push(...page.records.map((r) => r.version))
        cursor = page.nextCursor
      } while (cursor)
      expect(seen).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24])
      const window = await log.query({ entityId: 'actor:q', from: 3_000, to: 5_000 })
      expect(window.records.map((r) => r.version)).toEqual([3, 4])
      await expect(log.query({ cursor: 'x' })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
      await expect(
        log.append([{ ...change('bad', 1), changeType: 'rename' as never }]),
      ).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
      })
    })

    it('reads every committed change through the feed, in commit order', async () => {
      const log = createPrismaChangeLog({ prisma: db.prisma })
      await log.append(
        Array.from({ length: 7 }, (_, i) => change(`f${i}`, i + 1, { entityId: 'actor:f' })),
      )
      const ids: string[] = []
      let checkpoint: string | undefined
      for (let i = 0; i < 50; i++) {
        const batch = await log.readFeed(checkpoint, 3)
        ids.push(...batch.records.map((r) => r.id))
        if (batch.records.length === 0) break
        checkpoint = batch.checkpoint
      }
      expect(ids.filter((id) => id.startsWith('f'))).toEqual([
        'f0',
        'f1',
        'f2',
        'f3',
        'f4',
        'f5',
        'f6',
      ])
      expect(new Set(ids).size).toBe(ids.length)
    })
  })
}

describe('change feed under concurrent writers (postgres)', () => {
  let db: TestDb
  let writers: PrismaClient
  beforeAll(async () => {
    db = await postgres()
    await migrate(db.prisma)
    writers = new PrismaClient({
      adapter: new PrismaPg({
        connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
        max: 12,
        options: `-c search_path=${db.schema}`,
      }),
    })
  })
  afterAll(async () => {
    await writers?.$disconnect()
    await db?.drop()
  })

  it('gives every reader each committed change exactly once and no rolled-back one', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    const committed = new Set<string>()
    const rolledBack = new Set<string>()
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
    let writing = true
    const write = async (w: number) => {
      for (let i = 0; i < 15; i++) {
        const id = `w${w}-${i}-${randomUUID().slice(0, 6)}`
        const rollback = (w + i) % 4 === 0
        try {
          await writers.$transaction(
            async (tx) => {
              // the sequence number is taken here, long before the commit
              await tx.$executeRawUnsafe(
                `INSERT INTO ac_state_changes (id, entity_type, entity_id, change_type, new_value, timestamp, user_id, system_id, version)
                 VALUES ($1, 'primary_core', $2, 'create', '1', now(), 'u', 's', 1)`,
                id,
                `actor:${id}`,
              )
              await sleep(5 + ((w * 7 + i * 13) % 40))
              if (rollback) throw new Error('roll back')
            },
            { timeout: 10_000 },
          )
          committed.add(id)
        } catch (error) {
          if ((error as Error).message !== 'roll back') throw error
          rolledBack.add(id)
        }
      }
    }
    const read = async () => {
      const seen: string[] = []
      let checkpoint: string | undefined
      for (let rounds = 0; rounds < 2_000; rounds++) {
        const batch = await log.readFeed(checkpoint, 4)
        seen.push(...batch.records.map((r) => r.id))
        checkpoint = batch.checkpoint
        if (batch.records.length === 0) {
          if (!writing) break
          await sleep(3)
        }
      }
      return seen
    }
    const readers = [read(), read(), read()]
    await Promise.all(Array.from({ length: 8 }, (_, w) => write(w)))
    writing = false
    const results = await Promise.all(readers)
    expect(committed.size).toBeGreaterThan(50)
    expect(rolledBack.size).toBeGreaterThan(10)
    for (const seen of results) {
      expect(new Set(seen).size).toBe(seen.length) // exactly once
      expect([...seen].sort()).toEqual([...committed].sort()) // every committed one
      expect(seen.some((id) => rolledBack.has(id))).toBe(false)
    }
  }, 60_000)
})
