import {
  type CacheEvent,
  channels,
  compression,
  createCodec,
  glob,
  type WriteRejectedError,
} from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPrismaChangeLog, createPrismaStore, migrate, type PrismaTier } from '../src/index.js'
import { pglite, postgres, type TestDb } from './db.js'

for (const [name, open] of [
  ['postgres', postgres],
  ['pglite', pglite],
] as const) {
  describe(`one-statement batches on ${name}`, () => {
    let db: TestDb
    let tier: PrismaTier
    beforeAll(async () => {
      db = await open()
      await migrate(db.prisma)
      tier = createPrismaStore({ prisma: db.prisma })
    })
    afterAll(async () => {
      await db?.drop()
    })

    it('getMany publishes a hit or a miss per key, as get does', async () => {
      const s = tier.namespace('batch-events')
      await s.set('here', 1)
      const seen: string[] = []
      const onHit = (e: unknown) => {
        const ev = e as CacheEvent
        if (ev.namespace === 'batch-events') seen.push(`hit ${ev.key}`)
      }
      const onMiss = (e: unknown) => {
        const ev = e as CacheEvent
        if (ev.namespace === 'batch-events') seen.push(`miss ${ev.key}`)
      }
      channels.hit.subscribe(onHit)
      channels.miss.subscribe(onMiss)
      try {
        await s.getMany(['here', 'gone'])
      } finally {
        channels.hit.unsubscribe(onHit)
        channels.miss.unsubscribe(onMiss)
      }
      expect(seen).toEqual(['hit here', 'miss gone'])
    })

    it('versionFloors reads live rows, tombstones and expired rows in one statement', async () => {
      const s = tier.namespace('floors')
      await s.set('live', 1, { version: 4 })
      await s.set('gone', 1, { version: 6 })
      await s.deleteVersions([{ key: 'gone', version: 7 }])
      await s.set('old', 1, { version: 3, expiresAt: Date.now() - 1_000 })
      expect(await s.versionFloors(['live', 'gone', 'old', 'never'])).toEqual([
        { version: 4, exists: true },
        { version: 7, exists: false },
        { version: 0, exists: false },
        { version: 0, exists: false },
      ])
      expect(await s.versionFloors([])).toEqual([])
      await expect(s.versionFloors([''])).rejects.toThrow(/key/)
    })

    it('apply newer versions, keep newer stored ones, and keep envelopes exact', async () => {
      const s = tier.namespace('batch')
      await s.set('b', 'stored-9', { version: 9 })
      const expiresAt = Date.now() + 60_123
      const results = await s.setMany([
        {
          key: 'a',
          value: { hp: 1 },
          version: 3,
          tags: ['guild:7', 'x'],
          createdAt: 1_234_567,
          expiresAt,
        },
        { key: 'b', value: 'older', version: 5 },
        { key: 'c', value: [1, 2], version: 1 },
      ])
      expect(results).toEqual([
        { applied: true, version: 3 },
        { applied: false, version: 9 },
        { applied: true, version: 1 },
      ])
      expect(await s.get('a')).toEqual({
        value: { hp: 1 },
        version: 3,
        createdAt: 1_234_567,
        expiresAt,
        tags: ['guild:7', 'x'],
      })
      expect((await s.get('b'))?.value).toBe('stored-9')
      // a replay of the same batch changes nothing and reports the same outcome
      expect((await s.setMany([{ key: 'c', value: [1, 2], version: 1 }]))[0]).toEqual({
        applied: true,
        version: 1,
      })
    })

    it('write entries and their state changes together, or neither', async () => {
      const s = tier.namespace('together')
      const log = createPrismaChangeLog({ prisma: db.prisma })
      const change = (id: string, version: number) => ({
        id,
        entityType: 'together',
        entityId: 'actor:1',
        changeType: (version === 1 ? 'create' : 'update') as 'create' | 'update',
        oldValue: version === 1 ? null : { hp: version - 1 },
        newValue: { hp: version },
        timestamp: Date.now(),
        userId: 'u',
        systemId: 's',
        version,
      })
      const ok = await s.setManyWithChanges(
        [{ key: 'actor:1', value: { hp: 1 }, version: 1 }],
        [change('t1', 1)],
      )
      expect(ok).toEqual({
        results: [{ applied: true, version: 1 }],
        changes: { appended: 1, duplicates: 0 },
      })
      // version 1 is already logged under another id: the whole transaction rolls back
      await expect(
        s.setManyWithChanges(
          [{ key: 'actor:1', value: { hp: 99 }, version: 2 }],
          [change('t2', 2), change('t3', 1)],
        ),
      ).rejects.toMatchObject({ code: 'E_CONFLICT' })
      expect(await s.get('actor:1')).toMatchObject({ value: { hp: 1 }, version: 1 })
      expect((await log.history('together', 'actor:1')).map((r) => r.id)).toEqual(['t1'])
    })

    it('name the rows the database refuses and write none of the batch', async () => {
      // a rule of the database the store knows nothing about
      await db.prisma.$executeRawUnsafe(
        `ALTER TABLE ac_cache_entries ADD CONSTRAINT no_poison CHECK (key NOT LIKE 'poison%')`,
      )
      const s = tier.namespace('poison')
      const items = Array.from({ length: 50 }, (_, i) => ({
        key: i === 17 || i === 33 ? `poison-${i}` : `row-${i}`,
        value: i,
        version: 1,
      }))
      const error = await s.setMany(items).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'E_WRITE_REJECTED', namespace: 'poison' })
      expect((error as WriteRejectedError).rejected.map((r) => r.key)).toEqual([
        'poison-17',
        'poison-33',
      ])
      expect((error as WriteRejectedError).rejected[0]?.reason).toMatch(/no_poison/)
      expect(await s.getMany(['row-0', 'row-49'])).toEqual([undefined, undefined])
      // the rest goes through once the poison rows are set aside
      const results = await s.setMany(items.filter((it) => !it.key.startsWith('poison')))
      expect(results.every((r) => r.applied)).toBe(true)
      await db.prisma.$executeRawUnsafe('ALTER TABLE ac_cache_entries DROP CONSTRAINT no_poison')
    })

    it('match glob classes holding "[" as every other tier does, and treat year-10000 expiries as never', async () => {
      const s = tier.namespace('brackets')
      const keys = ['[', '.', 'a', '[.a.]', ':']
      await s.setMany(keys.map((key) => ({ key, value: key, version: 1 })))
      expect(await s.deletePattern(glob`${'['}`)).toBe(1)
      expect(await s.deletePattern('[\\[.:]')).toBe(2)
      expect((await s.getMany(keys)).map((e) => e?.value)).toEqual([
        undefined,
        undefined,
        'a',
        '[.a.]',
        undefined,
      ])
      await s.set('far', 1, { ttl: 9_000 * 365 * 24 * 3_600_000 })
      expect(await s.getTTL('far')).toBe(Infinity)
      expect((await s.get('far'))?.expiresAt).toBeNull()
    })

    it('store bytes codecs and mixed encodings', async () => {
      const packed = tier.namespace('packed', {
        codec: createCodec({ transforms: [compression({ threshold: 1 })] }),
      })
      await packed.setMany([
        { key: 'p1', value: { text: 'x'.repeat(500) }, version: 1 },
        { key: 'p2', value: 2, version: 1 },
      ])
      expect((await packed.getMany(['p1', 'p2'])).map((e) => e?.value)).toEqual([
        { text: 'x'.repeat(500) },
        2,
      ])
    })
  })
}
