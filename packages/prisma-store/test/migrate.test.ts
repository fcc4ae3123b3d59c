import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listMigrations, migrate, splitStatements } from '../src/index.js'
import { pglite, postgres, type TestDb } from './db.js'

for (const [name, open] of [
  ['postgres', postgres],
  ['pglite', pglite],
] as const) {
  describe(`migrations on ${name}`, () => {
    let db: TestDb
    beforeAll(async () => {
      db = await open()
    }, 60_000)
    afterAll(async () => {
      await db?.drop()
    })

    it('apply once, record themselves as prisma migrate deploy does, and skip afterwards', async () => {
      const shipped = await listMigrations()
      expect(shipped.length).toBeGreaterThan(0)
      const first = await migrate(db.prisma)
      expect(first).toEqual({ applied: shipped.map((m) => m.name), skipped: [] })
      const again = await migrate(db.prisma)
      expect(again).toEqual({ applied: [], skipped: shipped.map((m) => m.name) })
      const rows = await db.prisma.$queryRawUnsafe<
        { migration_name: string; checksum: string; applied_steps_count: number }[]
      >(
        'SELECT migration_name, checksum, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
      )
      expect(rows).toEqual(
        shipped.map((m) => ({
          migration_name: m.name,
          checksum: m.checksum,
          applied_steps_count: splitStatements(m.sql).length,
        })),
      )
    })

    it('leave a database the generated client can use: CRUD on every model', async () => {
      const p = db.prisma
      await p.cacheEntry.create({
        data: {
          namespace: 'ns',
          key: 'k',
          value: '1',
          version: 1n,
          createdAt: new Date(0),
          tags: ['a'],
        },
      })
      await p.cacheEntry.update({
        where: { namespace_key: { namespace: 'ns', key: 'k' } },
        data: { version: 2n },
      })
      expect(
        await p.cacheEntry.findUnique({ where: { namespace_key: { namespace: 'ns', key: 'k' } } }),
      ).toMatchObject({
        version: 2n,
        encoding: 't',
        tags: ['a'],
        expiresAt: null,
      })
      await p.cacheEntry.delete({ where: { namespace_key: { namespace: 'ns', key: 'k' } } })

      const change = await p.stateChange.create({
        data: {
          id: 'c1',
          entityType: 'primary_core',
          entityId: 'actor:1',
          changeType: 'create',
          newValue: '{"hp":1}',
          timestamp: new Date(),
          userId: 'u',
          systemId: 's',
          version: 1n,
        },
      })
      expect(change.seq).toBeGreaterThan(0n)
      const txid = await p.$queryRawUnsafe<{ txid: string }[]>(
        `SELECT txid::text AS txid FROM ac_state_changes WHERE id = 'c1'`,
      )
      expect(Number(txid[0]?.txid)).toBeGreaterThan(0)
      await expect(
        p.stateChange.create({
          data: {
            ...{
              id: 'c2',
              entityType: 'primary_core',
              entityId: 'actor:1',
              changeType: 'update',
              timestamp: new Date(),
              userId: 'u',
              systemId: 's',
            },
            version: 1n,
          },
        }),
      ).rejects.toThrow(/Unique constraint/)
      await expect(
        p.$executeRawUnsafe(
          `INSERT INTO ac_state_changes (id, entity_type, entity_id, change_type, timestamp, user_id, system_id, version) VALUES ('c3', 't', 'e', 'rename', now(), 'u', 's', 1)`,
        ),
      ).rejects.toThrow(/change_type_check/)

      const dead = await p.deadLetter.create({
        data: {
          namespace: 'ns',
          key: 'k',
          payload: '{}',
          error: 'boom',
          attempts: 3,
          firstSeen: new Date(),
          lastSeen: new Date(),
        },
      })
      expect(await p.deadLetter.count()).toBe(1)
      await p.deadLetter.delete({ where: { id: dead.id } })
    })

    it('create every index the queries rely on', async () => {
      const rows = await db.prisma.$queryRawUnsafe<{ indexname: string }[]>(
        `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'ac\\_%' ORDER BY indexname`,
      )
      expect(rows.map((r) => r.indexname)).toEqual([
        'ac_cache_entries_expires_at_idx',
        'ac_cache_entries_pkey',
        'ac_dead_letters_entry_idx',
        'ac_dead_letters_pkey',
        'ac_state_changes_entity_version_key',
        'ac_state_changes_feed_idx',
        'ac_state_changes_id_key',
        'ac_state_changes_pkey',
        'ac_state_changes_system_idx',
        'ac_state_changes_time_idx',
        'ac_state_changes_user_idx',
      ])
    })
  })
}

describe('concurrent migrations', () => {
  it('let two callers on a fresh database both succeed, applying each migration once', async () => {
    const db = await postgres()
    try {
      const [a, b] = await Promise.all([migrate(db.prisma), migrate(db.prisma)])
      expect([...a.applied, ...b.applied].sort()).toEqual(
        (await listMigrations()).map((m) => m.name).sort(),
      )
    } finally {
      await db.drop()
    }
  })
})
