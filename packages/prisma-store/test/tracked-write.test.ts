import {
  ConflictError,
  channels,
  InvalidOptionError,
  type Serializer,
  TierUnavailableError,
} from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createPrismaChangeLog,
  createPrismaStore,
  listMigrations,
  migrate,
  type PrismaChangeLog,
  type PrismaTier,
} from '../src/index.js'
import { pglite, postgres, type TestDb } from './db.js'
import { type Built, builder, dbClock, hooked, isWrite, storedRow } from './tracked.js'

type Hp = { hp: number }

for (const [name, open] of [
  ['postgres', postgres],
  ['pglite', pglite],
] as const) {
  describe(`tracked writes on ${name}`, () => {
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

    /** The row and the log agree: the row names the newest record, at its version. */
    async function expectInStep(ns: string, key: string, versions: number[]): Promise<void> {
      const history = await log.history(ns, key)
      expect(history.map((r) => r.version)).toEqual(versions)
      const head = history.at(-1)
      const row = await storedRow(db.prisma, ns, key)
      expect(row).toMatchObject({
        version: head?.version,
        deleted: head?.changeType === 'delete',
        changeHash: head?.hash,
        changeAt: head?.timestamp,
      })
      for (const [i, r] of history.entries()) {
        expect(r.prevHash ?? null).toBe(i === 0 ? null : history[i - 1]?.hash)
      }
    }

    it('creates, updates, deletes and creates again: versions 1 to 4, row and log in step', async () => {
      const s = tier.namespace<Hp>('life')
      const seen: Built[] = []
      const before = await dbClock(db.prisma)
      const steps = [
        { kind: 'set', value: { hp: 1 } },
        { kind: 'set', value: { hp: 2 } },
        { kind: 'delete' },
        { kind: 'set', value: { hp: 4 } },
      ] as const
      for (const [i, write] of steps.entries()) {
        const result = await s.writeWithChange(
          'a:1',
          write,
          builder('life', 'a:1', write, { seen }),
        )
        const record = seen[i]?.record
        expect(result).toEqual({ version: i + 1, change: { ...record, seq: expect.any(Number) } })
        const logged = await log.query({ id: record?.id })
        // the log leaves out a null prevHash
        expect(logged.records.map((x) => ({ ...x, prevHash: x.prevHash ?? null }))).toEqual([
          result.change,
        ])
        await expectInStep(
          'life',
          'a:1',
          Array.from({ length: i + 1 }, (_, v) => v + 1),
        )
        expect((await s.get('a:1'))?.value).toEqual(write.kind === 'set' ? write.value : undefined)
      }
      const after = await dbClock(db.prisma)
      const [c, u, d, r] = seen
      expect(c?.prior).toEqual({
        exists: false,
        version: 0,
        headHash: null,
        headTime: 0,
        now: c?.prior.now,
      })
      expect(u?.prior).toMatchObject({ exists: true, value: { hp: 1 }, version: 1 })
      expect(u?.prior).toMatchObject({ headHash: c?.record?.hash, headTime: c?.record?.timestamp })
      expect(d?.prior).toMatchObject({ exists: true, value: { hp: 2 }, version: 2 })
      expect(d?.prior.headHash).toBe(u?.record?.hash)
      // the tombstone keeps the delete's version and record
      expect(r?.prior).toEqual({
        exists: false,
        version: 3,
        headHash: d?.record?.hash,
        headTime: d?.record?.timestamp,
        now: r?.prior.now,
      })
      expect(seen.map((b) => b.record?.changeType)).toEqual([
        'create',
        'update',
        'delete',
        'create',
      ])
      // the database clock, read under the lock: in order with reads before and after
      const nows = seen.map((b) => b.prior.now)
      expect(nows).toEqual([...nows].sort((x, y) => x - y))
      expect(nows[0]).toBeGreaterThanOrEqual(before)
      expect(nows[3]).toBeLessThanOrEqual(after)
    })

    it('writes nothing when the builder throws, and rethrows what it threw', async () => {
      const s = tier.namespace<Hp>('throws')
      await s.writeWithChange(
        'k',
        { kind: 'set', value: { hp: 1 } },
        builder('throws', 'k', { kind: 'set', value: 1 }),
      )
      const before = await storedRow(db.prisma, 'throws', 'k')
      const conflict = new ConflictError(7, 1, { namespace: 'throws', key: 'k' })
      // an error that reads like an outage comes out as it is, not as TierUnavailableError
      const plain = new Error('Connection terminated unexpectedly')
      for (const key of ['k', 'new']) {
        for (const thrown of [conflict, plain]) {
          const error = await s
            .writeWithChange(key, { kind: 'set', value: { hp: 9 } }, () => {
              throw thrown
            })
            .catch((e: unknown) => e)
          expect(error).toBe(thrown)
        }
      }
      expect(await storedRow(db.prisma, 'throws', 'k')).toEqual(before)
      expect(await storedRow(db.prisma, 'throws', 'new')).toBeUndefined()
      expect((await log.history('throws', 'k')).length).toBe(1)
      expect((await log.history('throws', 'new')).length).toBe(0)
    })

    it('writes nothing when the builder finds nothing to change (a delete of an absent entity)', async () => {
      const s = tier.namespace('nothing')
      const write = { kind: 'delete' } as const
      expect(await s.writeWithChange('gone', write, builder('nothing', 'gone', write))).toEqual({
        version: 0,
      })
      expect(await storedRow(db.prisma, 'nothing', 'gone')).toBeUndefined()
      expect(await log.history('nothing', 'gone')).toEqual([])
    })

    it('refuses a record whose id or version is logged already: ConflictError, nothing written', async () => {
      const s = tier.namespace<Hp>('taken')
      const set = { kind: 'set', value: { hp: 1 } } as const
      const first = await s.writeWithChange('a', set, builder('taken', 'a', set))
      const id = first.change?.id as string
      const reuse = (key: string) => builder('taken', key, set, { edit: (r) => ({ ...r, id }) })
      for (const key of ['a', 'b']) {
        const error = await s.writeWithChange(key, set, reuse(key)).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(ConflictError)
        expect((error as Error).message).toContain(`change id "${id}" is logged already`)
      }
      expect(await storedRow(db.prisma, 'taken', 'b')).toBeUndefined()
      await expectInStep('taken', 'a', [1])
      // version 2 logged by an append that wrote no row: the row stays at 1
      const forged = {
        ...(first.change as NonNullable<typeof first.change>),
        id: 'forged',
        version: 2,
      }
      await log.append([forged])
      const error = await s
        .writeWithChange('a', set, builder('taken', 'a', set))
        .catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'E_CONFLICT', expectedVersion: 1, actualVersion: 2 })
      expect((error as Error).message).toMatch(/taken by change "forged"/)
      expect(await storedRow(db.prisma, 'taken', 'a')).toMatchObject({
        version: 1,
        changeHash: first.change?.hash,
      })
      expect((await log.history('taken', 'a')).map((r) => r.id)).toEqual([id, 'forged'])
    })

    it("refuses a record that is not the entity's next one: InvalidOptionError naming the field", async () => {
      const s = tier.namespace<Hp>('invalid')
      const set = { kind: 'set', value: { hp: 1 } } as const
      await s.writeWithChange('a', set, builder('invalid', 'a', set))
      const before = await storedRow(db.prisma, 'invalid', 'a')
      const spoilt: [string, 'a' | 'b', (r: import('@actor-cache/core').ChangeRecord) => object][] =
        [
          ['version', 'a', (r) => ({ ...r, version: r.version + 1 })],
          ['version', 'b', (r) => ({ ...r, version: 2 })],
          ['prevHash', 'a', (r) => ({ ...r, prevHash: null })],
          ['prevHash', 'b', (r) => ({ ...r, prevHash: 'x' })],
          ['entityType', 'a', (r) => ({ ...r, entityType: 'other' })],
          ['entityId', 'a', (r) => ({ ...r, entityId: 'b' })],
          ['changeType', 'a', (r) => ({ ...r, changeType: 'create' })],
          ['changeType', 'b', (r) => ({ ...r, changeType: 'update' })],
          ['hash', 'b', ({ hash: _, ...r }) => r],
          ['id', 'b', (r) => ({ ...r, id: '' })],
        ]
      for (const [field, key, edit] of spoilt) {
        const build = builder('invalid', key, set, { edit: edit as never })
        const error = await s.writeWithChange(key, set, build).catch((e: unknown) => e)
        expect([field, error]).toEqual([field, expect.any(InvalidOptionError)])
        expect((error as InvalidOptionError).option).toBe(field)
      }
      // a delete logged as an update
      const del = { kind: 'delete' } as const
      const build = builder('invalid', 'a', del, { edit: (r) => ({ ...r, changeType: 'update' }) })
      await expect(s.writeWithChange('a', del, build)).rejects.toMatchObject({
        option: 'changeType',
      })
      expect(await storedRow(db.prisma, 'invalid', 'a')).toEqual(before)
      expect(await storedRow(db.prisma, 'invalid', 'b')).toBeUndefined()
      expect((await log.history('invalid', 'a')).length).toBe(1)
      expect((await log.history('invalid', 'b')).length).toBe(0)
    })

    it('continues the chain over an expired row and over untracked writes (a version gap)', async () => {
      const s = tier.namespace<Hp>('gaps')
      const seen: Built[] = []
      const expired = {
        kind: 'set',
        value: { hp: 1 },
        options: { expiresAt: Date.now() - 60_000 },
      } as const
      // the builder's last call is the one whose record was written (a remembered state may
      // be tried first, and turn out stale)
      await s.writeWithChange('e', expired, builder('gaps', 'e', expired, { seen }))
      const first = seen.at(-1)
      expect(await s.get('e')).toBeUndefined()
      const set = { kind: 'set', value: { hp: 2 } } as const
      await s.writeWithChange('e', set, builder('gaps', 'e', set, { seen }))
      const second = seen.at(-1)
      expect(second?.prior).toMatchObject({
        exists: false,
        version: 1,
        headHash: first?.record?.hash,
      })
      expect(second?.record?.changeType).toBe('create')
      // an untracked write moves the version and leaves the row's record as it is
      await s.set('e', { hp: 3 })
      await s.writeWithChange('e', set, builder('gaps', 'e', set, { seen }))
      const third = seen.at(-1)
      expect(third?.prior).toMatchObject({ exists: true, value: { hp: 3 }, version: 3 })
      expect(third?.prior.headHash).toBe(second?.record?.hash)
      expect((await log.history('gaps', 'e')).map((r) => r.version)).toEqual([1, 2, 4])
    })

    it('continues the chain from the log when the row is gone (a plain delete, pruning)', async () => {
      const s = tier.namespace<Hp>('gone-row')
      const seen: Built[] = []
      const set = { kind: 'set', value: { hp: 1 } } as const
      await s.writeWithChange('r', set, builder('gone-row', 'r', set, { seen }))
      await s.writeWithChange('r', set, builder('gone-row', 'r', set, { seen }))
      const second = seen.at(-1)
      await db.prisma.$executeRawUnsafe(
        `DELETE FROM ac_cache_entries WHERE namespace = 'gone-row' AND key = 'r'`,
      )
      await s.writeWithChange('r', set, builder('gone-row', 'r', set, { seen }))
      expect(seen.at(-1)?.prior).toMatchObject({
        exists: false,
        version: 2,
        headHash: second?.record?.hash,
        headTime: second?.record?.timestamp,
      })
      expect(seen.at(-1)?.record?.changeType).toBe('create')
      await expectInStep('gone-row', 'r', [1, 2, 3])
    })

    it("writes the record's values with the store's changeSerializer, for a log reading them with it", async () => {
      // a serializer whose text is not JSON: what the columns hold shows which one wrote them
      const wrapped: Serializer = {
        name: 'base64-json',
        serialize: (v) => `b64:${Buffer.from(JSON.stringify(v)).toString('base64')}`,
        deserialize: (t) => JSON.parse(Buffer.from(t.replace(/^b64:/, ''), 'base64').toString()),
      }
      const s = createPrismaStore({ prisma: db.prisma, changeSerializer: wrapped }).namespace<Hp>(
        'wrapped',
      )
      const steps = [
        { kind: 'set', value: { hp: 1 } },
        { kind: 'set', value: { hp: 2 } },
      ] as const
      for (const write of steps) await s.writeWithChange('w', write, builder('wrapped', 'w', write))
      const items = [{ key: 'm', value: { hp: 3 }, version: 1 }]
      await s.setManyWithChanges(items, [
        {
          id: `m-${Date.now()}`,
          entityType: 'wrapped',
          entityId: 'm',
          changeType: 'create',
          oldValue: null,
          newValue: { hp: 3 },
          timestamp: Date.now(),
          userId: 'u',
          systemId: 's',
          version: 1,
        },
      ])
      const columns = await db.prisma.$queryRawUnsafe<{ old: string | null; new: string }[]>(
        `SELECT old_value AS old, new_value AS new FROM ac_state_changes
          WHERE entity_type = 'wrapped' ORDER BY seq`,
      )
      expect(columns).toEqual([
        { old: null, new: wrapped.serialize({ hp: 1 }) },
        { old: wrapped.serialize({ hp: 1 }), new: wrapped.serialize({ hp: 2 }) },
        { old: null, new: wrapped.serialize({ hp: 3 }) },
      ])
      const reader = createPrismaChangeLog({ prisma: db.prisma, serializer: wrapped })
      expect((await reader.history('wrapped', 'w')).map((r) => [r.oldValue, r.newValue])).toEqual([
        [null, { hp: 1 }],
        [{ hp: 1 }, { hp: 2 }],
      ])
      expect(() =>
        createPrismaStore({ prisma: db.prisma, changeSerializer: {} as Serializer }),
      ).toThrow(/changeSerializer/)
    })

    it('keeps one chain when two stores (two processes) take turns writing an entity', async () => {
      // each store remembers the state it left and tries it first: the other's writes make that
      // state stale, and the write must then take the locking path
      const other = createPrismaStore({ prisma: db.prisma }).namespace<Hp>('turns')
      const mine = tier.namespace<Hp>('turns')
      const seen: Built[] = []
      for (let i = 0; i < 12; i++) {
        const s = i % 4 < 2 ? mine : other // two writes each: the second one is fast
        const write =
          i === 9 ? ({ kind: 'delete' } as const) : ({ kind: 'set', value: { hp: i } } as const)
        await s.writeWithChange('k', write, builder('turns', 'k', write, { seen }))
      }
      await expectInStep(
        'turns',
        'k',
        Array.from({ length: 12 }, (_, i) => i + 1),
      )
      const history = await log.history('turns', 'k')
      for (const [i, r] of history.entries()) {
        if (i > 0) expect(r.timestamp).toBeGreaterThanOrEqual(history[i - 1]?.timestamp ?? 0)
        const before = history[i - 1]
        expect(r.oldValue).toEqual(
          before === undefined || before.changeType === 'delete' ? null : before.newValue,
        )
      }
      // stale remembered states were tried and given up: more builder calls than writes
      expect(seen.length).toBeGreaterThan(12)
    })

    it('publishes the events of a set and of a delete', async () => {
      const s = tier.namespace<Hp>('events')
      const events: unknown[] = []
      const onSet = (m: unknown) => events.push(['set', m])
      const onDelete = (m: unknown) => events.push(['delete', m])
      channels.set.subscribe(onSet)
      channels.delete.subscribe(onDelete)
      try {
        const set = { kind: 'set', value: { hp: 1 } } as const
        const del = { kind: 'delete' } as const
        await s.writeWithChange('k', set, builder('events', 'k', set))
        await s.writeWithChange('k', del, builder('events', 'k', del))
        await s.writeWithChange('k', del, builder('events', 'k', del)) // absent: nothing
      } finally {
        channels.set.unsubscribe(onSet)
        channels.delete.unsubscribe(onDelete)
      }
      const where = { tier: 'postgres', namespace: 'events' }
      expect(events).toEqual([
        ['set', { ...where, key: 'k', durationMs: 0, applied: true }],
        ['delete', { ...where, count: 1, durationMs: 0 }],
      ])
    })

    it('leaves neither row nor record when the transaction fails after the write statement', async () => {
      let wrote = 0
      const failing = hooked(db.prisma, async (step) => {
        if (!isWrite(step)) return
        wrote++
        // the row and the record are there, inside the transaction
        const [row] = await step.tx.$queryRawUnsafe<{ n: bigint }[]>(
          `SELECT count(*) AS n FROM ac_cache_entries e JOIN ac_state_changes c
             ON c.entity_type = e.namespace AND c.entity_id = e.key AND c.hash = e.change_hash
            WHERE e.namespace = 'fails' AND e.key = 'k'`,
        )
        expect(Number(row?.n)).toBe(1)
        throw new Error('injected failure after the write statement')
      })
      const s = createPrismaStore({ prisma: failing }).namespace<Hp>('fails')
      const set = { kind: 'set', value: { hp: 1 } } as const
      await expect(s.writeWithChange('k', set, builder('fails', 'k', set))).rejects.toThrow(
        /injected/,
      )
      expect(wrote).toBe(1)
      expect(await storedRow(db.prisma, 'fails', 'k')).toBeUndefined()
      expect(await log.history('fails', 'k')).toEqual([])
    })

    it('fails with E_TIER_UNAVAILABLE saying to run migrate() before the tracked-writes migration', async () => {
      const s = tier.namespace<Hp>('old')
      const m = (await listMigrations()).find((x) => x.name.endsWith('_tracked_writes'))
      await db.prisma.$executeRawUnsafe('ALTER TABLE ac_cache_entries DROP COLUMN change_hash')
      await db.prisma.$executeRawUnsafe('ALTER TABLE ac_cache_entries DROP COLUMN change_at')
      await db.prisma.$executeRawUnsafe(
        'DELETE FROM "_prisma_migrations" WHERE migration_name = $1',
        m?.name,
      )
      const set = { kind: 'set', value: { hp: 1 } } as const
      const error = await s
        .writeWithChange('k', set, builder('old', 'k', set))
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TierUnavailableError)
      expect((error as Error).message).toMatch(/change_hash.*run migrate\(prisma\)/)
      expect(await s.set('plain', { hp: 1 })).toEqual({ applied: true, version: 1 })
      expect(await migrate(db.prisma)).toMatchObject({ applied: [m?.name] })
      expect((await s.writeWithChange('k', set, builder('old', 'k', set))).version).toBe(1)
    })
  })
}
