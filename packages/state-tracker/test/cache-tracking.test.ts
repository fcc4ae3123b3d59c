import { type ChangeLog, createMemoryChangeLog } from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import {
  createPrismaChangeLog,
  createPrismaStore,
  type PrismaTier,
} from '@actor-cache/prisma-store'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker, type StateTracker, trackAs } from '../src/index.js'
import { openDatabase, type TestDatabase } from './logs.js'

interface Core {
  level: number
  hp: number
  mp?: number
}
type Spaces = {
  primary_core: Core
  flexible_stats: { buffs: string[] }
  derived_stats: { power: number }
}

for (const engine of ['postgres', 'pglite'] as const) {
  describe(`automatic tracking of a TieredCache's writes (${engine})`, () => {
    let db: TestDatabase
    let l1: MemCache
    let l3: PrismaTier
    let log: ChangeLog
    let tracker: StateTracker
    let cache: TieredCache<Spaces>
    beforeAll(async () => {
      db = await openDatabase(engine)
      log = createPrismaChangeLog({ prisma: db.prisma })
      tracker = createStateTracker({ log, systemId: 'game-server' })
      l1 = createMemCache({ maxSize: 16 * 1024 * 1024 })
      l3 = createPrismaStore({ prisma: db.prisma })
      cache = createTieredCache<Spaces>({
        l1,
        l3,
        namespaces: {
          primary_core: { strategy: 'write_through', ttl: 60_000 },
          flexible_stats: { strategy: 'write_around', ttl: 60_000 },
        },
        tracking: tracker.writeTracking(['primary_core', 'flexible_stats']),
      })
    })
    afterAll(async () => {
      await cache?.close()
      await l1?.close()
      await l3?.close()
      await db?.close()
    })
    const core = () => cache.namespace('primary_core')

    it('refuses to track a write_behind namespace whose record cannot write tracked batches', () => {
      const other = createTieredCache({
        l3,
        namespaces: {
          derived_stats: {
            strategy: 'write_behind',
            record: createMemCache().namespace('derived_stats'),
          },
        },
        tracking: tracker.writeTracking(['derived_stats']),
      })
      expect(() => other.namespace('derived_stats')).toThrow(/write_behind/)
      return other.close()
    })

    it('logs every write and delete with its old and new value, in the write transaction', async () => {
      const ns = core()
      await trackAs({ userId: 'user:456', systemId: 'api' }, async () => {
        await ns.set('actor:1', { level: 1, hp: 100 })
        await ns.set('actor:1', { level: 2, hp: 120 })
        await ns.delete('actor:1')
        await ns.set('actor:1', { level: 1, hp: 50 }, { userId: 'user:gm', systemId: 'admin-tool' })
      })
      const history = await tracker.history('primary_core', 'actor:1')
      expect(
        history.map((r) => [r.version, r.changeType, r.oldValue, r.newValue, r.userId, r.systemId]),
      ).toEqual([
        [1, 'create', null, { level: 1, hp: 100 }, 'user:456', 'api'],
        [2, 'update', { level: 1, hp: 100 }, { level: 2, hp: 120 }, 'user:456', 'api'],
        [3, 'delete', { level: 2, hp: 120 }, null, 'user:456', 'api'],
        [4, 'create', null, { level: 1, hp: 50 }, 'user:gm', 'admin-tool'],
      ])
      const stored = await l3.namespace<Core>('primary_core').get('actor:1')
      expect(stored).toMatchObject({ version: 4, value: { level: 1, hp: 50 } })
      expect(
        await tracker.verify('primary_core', 'actor:1', {
          stored: { exists: true, value: stored?.value, version: stored?.version },
        }),
      ).toMatchObject({ ok: true, head: { version: 4 } })
      // the cached copies carry the record's version
      expect((await ns.getEntry('actor:1'))?.version).toBe(4)
      // a delete of an absent entity logs nothing
      expect(await trackAs({ userId: 'u' }, () => ns.delete('actor:none'))).toBe(false)
      expect(await tracker.history('primary_core', 'actor:none')).toEqual([])
    })

    it('tracks write-around writes too', async () => {
      const flex = cache.namespace('flexible_stats')
      await trackAs({ userId: 'u' }, async () => {
        await flex.set('actor:2', { buffs: ['haste'] })
        await flex.set('actor:2', { buffs: [] })
      })
      expect((await tracker.history('flexible_stats', 'actor:2')).map((r) => r.changeType)).toEqual(
        ['create', 'update'],
      )
      expect((await tracker.verify('flexible_stats', 'actor:2')).ok).toBe(true)
    })

    it('refuses a write without an author, or with an explicit version, before any I/O', async () => {
      const ns = core()
      await expect(ns.set('actor:3', { level: 1, hp: 1 })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        option: 'userId',
      })
      await expect(ns.delete('actor:3')).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        option: 'userId',
      })
      await expect(
        ns.set('actor:3', { level: 1, hp: 1 }, { userId: 'u', version: 7 }),
      ).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        option: 'version',
      })
      expect(await l3.namespace('primary_core').get('actor:3')).toBeUndefined()
      expect(await tracker.history('primary_core', 'actor:3')).toEqual([])
    })

    it('checks expected versions under the record lock: E_CONFLICT, nothing logged, caches dropped', async () => {
      const ns = core()
      await trackAs({ userId: 'u' }, async () => {
        await ns.set('actor:4', { level: 1, hp: 1 }, { expectedVersion: 0 })
        await expect(
          ns.set('actor:4', { level: 9, hp: 9 }, { expectedVersion: 0 }),
        ).rejects.toMatchObject({
          code: 'E_CONFLICT',
          expectedVersion: 0,
          actualVersion: 1,
          namespace: 'primary_core',
          key: 'actor:4',
        })
        await ns.set('actor:4', { level: 2, hp: 2 }, { expectedVersion: 1 })
        await expect(ns.delete('actor:4', { expectedVersion: 1 })).rejects.toMatchObject({
          code: 'E_CONFLICT',
          actualVersion: 2,
        })
        expect(await ns.delete('actor:4', { expectedVersion: 2 })).toBe(true)
      })
      expect((await tracker.history('primary_core', 'actor:4')).map((r) => r.version)).toEqual([
        1, 2, 3,
      ])
      expect(await ns.get('actor:4')).toBeUndefined()
    })

    it('lets one of 32 concurrent creates through, and serializes concurrent updates along one chain', async () => {
      const ns = core()
      const creates = await Promise.allSettled(
        Array.from({ length: 32 }, (_, i) =>
          trackAs({ userId: `user:${i}` }, () =>
            ns.set('actor:5', { level: i, hp: i }, { expectedVersion: 0 }),
          ),
        ),
      )
      expect(creates.filter((o) => o.status === 'fulfilled')).toHaveLength(1)
      for (const o of creates)
        if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'E_CONFLICT' })
      await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          trackAs({ userId: 'u' }, () => ns.set('actor:5', { level: 100 + i, hp: 0 })),
        ),
      )
      const history = await tracker.history('primary_core', 'actor:5')
      expect(history.map((r) => r.version)).toEqual(Array.from({ length: 17 }, (_, i) => i + 1))
      const stored = await l3.namespace<Core>('primary_core').get('actor:5')
      expect(
        await tracker.verify('primary_core', 'actor:5', {
          stored: { exists: true, value: stored?.value, version: stored?.version },
        }),
      ).toMatchObject({ ok: true })
    })

    it('rolls back to a version, to a time, a delete, and undoes one change three-way', async () => {
      const ns = core()
      const as = { userId: 'user:gm', systemId: 'admin-tool' }
      await trackAs({ userId: 'u' }, async () => {
        await ns.set('actor:6', { level: 1, hp: 10, mp: 5 })
        await ns.set('actor:6', { level: 2, hp: 10, mp: 5 }) // v2: level
        await ns.set('actor:6', { level: 2, hp: 20, mp: 5 }) // v3: hp
      })
      const v3 = (await tracker.history('primary_core', 'actor:6'))[2]
      // undo v2 (level): nobody touched level since
      const undone = await tracker.rollback(
        'primary_core',
        'actor:6',
        { undo: (await tracker.history('primary_core', 'actor:6'))[1]?.id ?? '' },
        { writer: ns, ...as },
      )
      expect(undone).toMatchObject({
        changed: true,
        version: 4,
        state: { exists: true, value: { level: 1, hp: 20, mp: 5 } },
      })
      expect(await ns.get('actor:6')).toEqual({ level: 1, hp: 20, mp: 5 })
      // undo v3 (hp) after hp changed again: a conflict naming hp, unless forced
      await trackAs({ userId: 'u' }, () => ns.set('actor:6', { level: 1, hp: 25, mp: 5 })) // v5
      await expect(
        tracker.rollback('primary_core', 'actor:6', { undo: v3?.id ?? '' }, { writer: ns, ...as }),
      ).rejects.toMatchObject({ code: 'E_UNDO_CONFLICT', fields: ['hp'] })
      expect(
        await tracker.rollback(
          'primary_core',
          'actor:6',
          { undo: v3?.id ?? '' },
          { writer: ns, force: true, ...as },
        ),
      ).toMatchObject({
        state: { value: { level: 1, hp: 10, mp: 5 } },
      })
      // to a version, and to a time
      expect(
        await tracker.rollback('primary_core', 'actor:6', { toVersion: 2 }, { writer: ns, ...as }),
      ).toMatchObject({ version: 7 })
      expect(await ns.get('actor:6')).toEqual({ level: 2, hp: 10, mp: 5 })
      const t3 = v3?.timestamp ?? 0
      await tracker.rollback('primary_core', 'actor:6', { toTime: t3 }, { writer: ns, ...as })
      expect((await ns.get('actor:6'))?.hp).toBe(20)
      // already there: nothing written
      expect(
        await tracker.rollback('primary_core', 'actor:6', { toVersion: 3 }, { writer: ns, ...as }),
      ).toMatchObject({ changed: false })
      // a delete, then rolling the delete back re-creates the entity
      await trackAs({ userId: 'u' }, () => ns.delete('actor:6'))
      const head = (await tracker.history('primary_core', 'actor:6')).at(-1)
      expect(head?.changeType).toBe('delete')
      await tracker.rollback(
        'primary_core',
        'actor:6',
        { undo: head?.id ?? '' },
        { writer: ns, ...as },
      )
      expect(await ns.get('actor:6')).toEqual({ level: 2, hp: 20, mp: 5 })
      const history = await tracker.history('primary_core', 'actor:6')
      expect(history.at(-1)).toMatchObject({
        changeType: 'create',
        userId: 'user:gm',
        systemId: 'admin-tool',
      })
      const stored = await l3.namespace<Core>('primary_core').get('actor:6')
      expect(
        await tracker.verify('primary_core', 'actor:6', {
          stored: { exists: true, value: stored?.value, version: stored?.version },
        }),
      ).toMatchObject({ ok: true })
    })

    it('rolls back under concurrent writes: a write landing first makes the rollback a conflict', async () => {
      const ns = core()
      await trackAs({ userId: 'u' }, async () => {
        await ns.set('actor:7', { level: 1, hp: 1 })
        await ns.set('actor:7', { level: 2, hp: 2 })
      })
      const outcomes = await Promise.allSettled([
        tracker.rollback('primary_core', 'actor:7', { toVersion: 1 }, { writer: ns, userId: 'gm' }),
        ...Array.from({ length: 8 }, (_, i) =>
          trackAs({ userId: 'u' }, () => ns.set('actor:7', { level: 10 + i, hp: 0 })),
        ),
      ])
      for (const o of outcomes)
        if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'E_CONFLICT' })
      const stored = await l3.namespace<Core>('primary_core').get('actor:7')
      const history = await tracker.history('primary_core', 'actor:7')
      expect(history.at(-1)?.version).toBe(stored?.version)
      expect(
        await tracker.verify('primary_core', 'actor:7', {
          stored: { exists: true, value: stored?.value, version: stored?.version },
        }),
      ).toMatchObject({ ok: true })
      expect(await ns.get('actor:7')).toEqual(stored?.value)
    })
  })
}

describe('tracking settings the cache refuses', () => {
  it('needs a record that logs changes and a strategy that writes it in the call', async () => {
    const tracker = createStateTracker({ log: createMemoryChangeLog() })
    const l1 = createMemCache({ maxSize: 1024 * 1024 })
    const cache = createTieredCache({ l1, tracking: tracker.writeTracking(['primary_core']) })
    expect(() => cache.namespace('primary_core')).toThrow(/store of record cannot log changes/)
    expect(() => cache.namespace('other')).not.toThrow()
    expect(() => tracker.writeTracking([])).toThrow(/at least one namespace/)
    expect(() => tracker.writeTracking(['bad name'])).toThrow()
    await cache.close()
    await l1.close()
  })
})
