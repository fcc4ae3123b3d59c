import { randomUUID } from 'node:crypto'
import { runChangeLogConformance } from '@actor-cache/core/testing'
import { PrismaPg } from '@prisma/adapter-pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../src/generated/prisma/client.js'
import { createPrismaChangeLog, migrate } from '../src/index.js'
import { pglite, postgres, type TestDb } from './db.js'

for (const [name, open] of [
  ['postgres', postgres],
  ['pglite', pglite],
] as const) {
  let db: TestDb
  runChangeLogConformance({
    name: `prisma (${name})`,
    async create() {
      db = await open()
      await migrate(db.prisma)
      return createPrismaChangeLog({ prisma: db.prisma })
    },
    destroy: () => db?.drop(),
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
      for (let rounds = 0; rounds < 20_000; rounds++) {
        const batch = await log.readFeed(checkpoint, 4)
        seen.push(...batch.records.map((r) => r.id))
        checkpoint = batch.checkpoint
        if (batch.records.length === 0) {
          // The feed waits for every transaction older than its last record, anywhere on the
          // server (other test files included): after the writers finish, keep reading until
          // everything committed has come through, for at most 20 s.
          if (!writing && (seen.length >= committed.size || Date.now() > readUntil())) break
          await sleep(3)
        }
      }
      return seen
    }
    let doneAt = 0
    const readUntil = (): number => doneAt + 20_000
    const readers = [read(), read(), read()]
    await Promise.all(Array.from({ length: 8 }, (_, w) => write(w)))
    doneAt = Date.now()
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

describe('change feed across a power of ten in transaction ids (pglite)', () => {
  let db: TestDb
  beforeAll(async () => {
    db = await pglite()
    await migrate(db.prisma)
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('orders transaction ids as numbers: 999 comes before 1000, and no change is skipped', async () => {
    const xid = async (): Promise<number> =>
      Number(
        (
          await db.prisma.$queryRawUnsafe<{ x: string }[]>('SELECT pg_current_xact_id()::text AS x')
        )[0]?.x,
      )
    // each statement outside a transaction takes a transaction id: walk up to just below 1000
    for (let i = 0; i < 2_000 && (await xid()) < 985; i++);
    const start = await xid()
    expect(start).toBeGreaterThanOrEqual(985)
    expect(start).toBeLessThan(1_000)
    const log = createPrismaChangeLog({ prisma: db.prisma })
    const ids = Array.from({ length: 30 }, (_, i) => `e/${i}`)
    for (let i = 0; i < ids.length; i++) {
      // one transaction per change: their ids run from below 1000 to above it
      await log.append([
        {
          id: ids[i] as string,
          entityType: 'primary_core',
          entityId: 'e',
          changeType: i === 0 ? 'create' : 'update',
          oldValue: i === 0 ? null : i - 1,
          newValue: i,
          timestamp: 1_000 + i,
          userId: 'u',
          systemId: 's',
          version: i + 1,
        },
      ])
    }
    expect(await xid()).toBeGreaterThan(1_000)
    const seen: string[] = []
    let checkpoint: string | undefined
    for (let i = 0; i < 100; i++) {
      const page = await log.readFeed(checkpoint, 7)
      seen.push(...page.records.map((r) => r.id))
      checkpoint = page.checkpoint
      if (page.records.length === 0) break
    }
    expect(seen).toEqual(ids)

    // the feed's end is past every id, 999 and 1000 compared as numbers: nothing before it is
    // read again, and the next change is the first one read after it
    const end = await log.feedEnd()
    expect((await log.readFeed(end, 100)).records).toEqual([])
    await log.append([
      {
        id: 'e/next',
        entityType: 'primary_core',
        entityId: 'e',
        changeType: 'update',
        oldValue: ids.length - 1,
        newValue: ids.length,
        timestamp: 2_000,
        userId: 'u',
        systemId: 's',
        version: ids.length + 1,
      },
    ])
    expect((await log.readFeed(end, 100)).records.map((r) => r.id)).toEqual(['e/next'])
  })

  it('starts an empty feed at its beginning', async () => {
    const empty = await pglite()
    try {
      await migrate(empty.prisma)
      const log = createPrismaChangeLog({ prisma: empty.prisma })
      const end = await log.feedEnd()
      expect((await log.readFeed(end, 10)).records).toEqual([])
      expect(end).toBe((await log.readFeed(undefined, 10)).checkpoint)
    } finally {
      await empty.drop()
    }
  })
})
