import type { ChangeBuilder, TrackedBatchItem } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createPrismaChangeLog,
  createPrismaStore,
  migrate,
  type PrismaChangeLog,
  type PrismaTier,
} from '../src/index.js'
import { pglite, postgres, type TestDb } from './db.js'
import { builder, storedRow } from './tracked.js'

type Hp = { hp: number }

for (const [name, open] of [
  ['postgres', postgres],
  ['pglite', pglite],
] as const) {
  describe(`tracked batches on ${name}`, () => {
    let db: TestDb
    let tier: PrismaTier
    let log: PrismaChangeLog
    beforeAll(async () => {
      db = await open()
      await migrate(db.prisma)
      tier = createPrismaStore({ prisma: db.prisma })
      log = createPrismaChangeLog({ prisma: db.prisma })
    })
    afterAll(async () => {
      await db?.drop()
    })

    const set = (ns: string, key: string, version: number, hp: number): TrackedBatchItem<Hp> => ({
      key,
      version,
      write: { kind: 'set', value: { hp } },
      build: builder(ns, key, { kind: 'set', value: { hp } }),
    })
    const del = (ns: string, key: string, version: number): TrackedBatchItem<Hp> => ({
      key,
      version,
      write: { kind: 'delete' },
      build: builder(ns, key, { kind: 'delete' }),
    })

    it('writes each entity once, its records chained in version order, whatever the input order', async () => {
      const s = tier.namespace<Hp>('tb1')
      const r = await s.writeTrackedBatch([
        set('tb1', 'a', 2, 20),
        set('tb1', 'b', 1, 5),
        set('tb1', 'a', 1, 10),
        del('tb1', 'b', 2),
        set('tb1', 'a', 3, 30),
      ])
      expect(r.map((x) => [x.outcome, x.version])).toEqual([
        ['written', 2],
        ['written', 1],
        ['written', 1],
        ['written', 2],
        ['written', 3],
      ])
      const history = await log.history('tb1', 'a')
      expect(history.map((h) => [h.version, h.changeType, h.oldValue, h.newValue])).toEqual([
        [1, 'create', null, { hp: 10 }],
        [2, 'update', { hp: 10 }, { hp: 20 }],
        [3, 'update', { hp: 20 }, { hp: 30 }],
      ])
      expect(history.map((h) => h.prevHash ?? null)).toEqual([
        null,
        history[0]?.hash,
        history[1]?.hash,
      ])
      expect(await s.get('a')).toMatchObject({ value: { hp: 30 }, version: 3 })
      expect(await s.get('b')).toBeUndefined()
      const row = await storedRow(db.prisma, 'tb1', 'b')
      expect(row).toMatchObject({ version: 2, deleted: true })
    })

    it('a replayed batch is found persisted; a write past a gap waits, and an unused version fills it', async () => {
      const s = tier.namespace<Hp>('tb2')
      const first = [set('tb2', 'k', 1, 1), set('tb2', 'k', 2, 2)]
      await s.writeTrackedBatch(first)
      expect((await s.writeTrackedBatch(first)).map((x) => x.outcome)).toEqual([
        'persisted',
        'persisted',
      ])
      const late = [set('tb2', 'k', 4, 4), set('tb2', 'k', 5, 5)]
      expect((await s.writeTrackedBatch(late)).map((x) => [x.outcome, x.version])).toEqual([
        ['gap', 2],
        ['gap', 2],
      ])
      expect((await log.history('tb2', 'k')).map((h) => h.version)).toEqual([1, 2])
      const unused: TrackedBatchItem<Hp> = {
        key: 'k',
        version: 3,
        write: { kind: 'delete' },
        unused: true,
        build: (prior) => {
          const r = builder('tb2', 'k', { kind: 'set', value: prior.value })(prior)
          return r && { ...r, changeType: 'update', newValue: prior.value ?? null }
        },
      }
      const filled = await s.writeTrackedBatch([unused, ...late])
      expect(filled.map((x) => [x.outcome, x.version])).toEqual([
        ['written', 3],
        ['written', 4],
        ['written', 5],
      ])
      const history = await log.history('tb2', 'k')
      expect(history.map((h) => [h.version, h.oldValue, h.newValue])).toEqual([
        [1, null, { hp: 1 }],
        [2, { hp: 1 }, { hp: 2 }],
        [3, { hp: 2 }, { hp: 2 }],
        [4, { hp: 2 }, { hp: 4 }],
        [5, { hp: 4 }, { hp: 5 }],
      ])
      expect(await s.get('k')).toMatchObject({ value: { hp: 5 }, version: 5 })
      // an unused version of an entity that ends the batch keeps its row as it is
      const only: TrackedBatchItem<Hp> = { ...unused, version: 6 }
      expect((await s.writeTrackedBatch([only])).map((x) => x.outcome)).toEqual(['written'])
      expect(await s.get('k')).toMatchObject({ value: { hp: 5 }, version: 6 })
    })

    it('a builder that throws, or a change id logged already, writes nothing of the batch', async () => {
      const s = tier.namespace<Hp>('tb3')
      const boom: ChangeBuilder = () => {
        throw new Error('refused by the builder')
      }
      await expect(
        s.writeTrackedBatch([set('tb3', 'x', 1, 1), { ...set('tb3', 'y', 1, 1), build: boom }]),
      ).rejects.toThrow('refused by the builder')
      expect(await s.get('x')).toBeUndefined()
      expect(await log.history('tb3', 'x')).toEqual([])
      await s.writeTrackedBatch([set('tb3', 'x', 1, 1)])
      const id = (await log.history('tb3', 'x'))[0]?.id as string
      const reuse: ChangeBuilder = (prior) => {
        const r = builder('tb3', 'z', { kind: 'set', value: { hp: 2 } })(prior)
        return r && { ...r, id }
      }
      await expect(
        s.writeTrackedBatch([set('tb3', 'w', 1, 1), { ...set('tb3', 'z', 1, 2), build: reuse }]),
      ).rejects.toMatchObject({ code: 'E_CONFLICT' })
      expect(await s.get('w')).toBeUndefined()
      expect(await s.get('z')).toBeUndefined()
    })

    it('rejects bad items before any I/O', async () => {
      const s = tier.namespace<Hp>('tb4')
      const bad: unknown[] = [
        [{ key: 'k', version: 0, write: { kind: 'set', value: 1 }, build: () => undefined }],
        [{ key: 'k', version: 1, write: { kind: 'set', value: 1 } }],
        [{ key: '', version: 1, write: { kind: 'set', value: 1 }, build: () => undefined }],
        [{ key: 'k', version: 1, write: { kind: 'nope' }, build: () => undefined }],
        'not an array',
      ]
      for (const items of bad) {
        await expect(s.writeTrackedBatch(items as TrackedBatchItem<Hp>[])).rejects.toMatchObject({
          code: expect.stringMatching(/^E_INVALID/),
        })
      }
      expect(await s.writeTrackedBatch([])).toEqual([])
    })
  })
}
