import { randomUUID } from 'node:crypto'
import { createMemoryWriteQueue } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import {
  createPrismaChangeLog,
  createPrismaStore,
  type PrismaTier,
} from '@actor-cache/prisma-store'
import {
  type AnyRedisClient,
  createRedisBus,
  createRedisStore,
  createRedisWriteQueue,
} from '@actor-cache/redis'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker, type StateTracker, trackAs } from '../src/index.js'
import { openDatabase, type TestDatabase } from './logs.js'

interface Stats {
  power: number
  tags?: string[]
}
type Spaces = { derived_stats: Stats }

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

async function redis(): Promise<AnyRedisClient> {
  const client = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 3_000, reconnectStrategy: false },
  })
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `these tests need Redis at ${REDIS_URL} (start it, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as unknown as AnyRedisClient
}

const behind = { strategy: 'write_behind', ttl: 60_000 } as const

for (const engine of ['postgres', 'pglite'] as const) {
  describe(`tracking of write-behind writes (${engine}, L1 + record)`, () => {
    let db: TestDatabase
    let l3: PrismaTier
    let tracker: StateTracker
    let cache: TieredCache<Spaces>
    beforeAll(async () => {
      db = await openDatabase(engine)
      tracker = createStateTracker({
        log: createPrismaChangeLog({ prisma: db.prisma }),
        systemId: 'game-server',
      })
      l3 = createPrismaStore({ prisma: db.prisma })
      cache = createTieredCache<Spaces>({
        l1: createMemCache(),
        l3,
        namespaces: { derived_stats: behind },
        writeBehind: { autoStart: false },
        tracking: tracker.writeTracking(['derived_stats']),
      })
    })
    afterAll(async () => {
      await cache?.close()
      await l3?.close()
      await db?.close()
    })
    const ns = () => cache.namespace('derived_stats')

    it('logs every queued write and delete with the flusher batch, versions 1, 2, 3 as acknowledged', async () => {
      const versions = await trackAs({ userId: 'user:1', systemId: 'api' }, async () => [
        (await ns().set('a:1', { power: 1 })).version,
        (await ns().set('a:1', { power: 2 })).version,
        (await ns().set('a:1', { power: 3 }, { userId: 'user:gm', systemId: 'tool' })).version,
      ])
      expect(versions).toEqual([1, 2, 3])
      // nothing is logged before the flush: the change travels with the queued write
      expect(await tracker.history('derived_stats', 'a:1')).toEqual([])
      await trackAs({ userId: 'user:1' }, () => ns().delete('a:1'))
      expect(
        (await trackAs({ userId: 'user:1' }, () => ns().set('a:1', { power: 9 }))).version,
      ).toBe(5)
      await cache.flush()
      const history = await tracker.history('derived_stats', 'a:1')
      expect(
        history.map((r) => [r.version, r.changeType, r.oldValue, r.newValue, r.userId, r.systemId]),
      ).toEqual([
        [1, 'create', null, { power: 1 }, 'user:1', 'api'],
        [2, 'update', { power: 1 }, { power: 2 }, 'user:1', 'api'],
        [3, 'update', { power: 2 }, { power: 3 }, 'user:gm', 'tool'],
        [4, 'delete', { power: 3 }, null, 'user:1', 'game-server'],
        [5, 'create', null, { power: 9 }, 'user:1', 'game-server'],
      ])
      const stored = await l3.namespace<Stats>('derived_stats').get('a:1')
      expect(stored).toMatchObject({ version: 5, value: { power: 9 } })
      expect(
        await tracker.verify('derived_stats', 'a:1', {
          stored: { exists: true, value: stored?.value, version: stored?.version },
        }),
      ).toMatchObject({ ok: true, head: { version: 5 } })
      expect((await ns().getEntry('a:1'))?.version).toBe(5)
    })

    it('checks authors before any I/O and expected versions when the version is claimed', async () => {
      await expect(ns().set('a:2', { power: 1 })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        option: 'userId',
      })
      await trackAs({ userId: 'u' }, async () => {
        await ns().set('a:2', { power: 1 }, { expectedVersion: 0 })
        await expect(ns().set('a:2', { power: 2 }, { expectedVersion: 0 })).rejects.toMatchObject({
          code: 'E_CONFLICT',
          actualVersion: 1,
        })
        await expect(ns().delete('a:2', { expectedVersion: 2 })).rejects.toMatchObject({
          code: 'E_CONFLICT',
        })
        expect(await ns().delete('a:2', { expectedVersion: 1 })).toBe(true)
      })
      await cache.flush()
      expect((await tracker.history('derived_stats', 'a:2')).map((r) => r.changeType)).toEqual([
        'create',
        'delete',
      ])
    })

    it('rolls back through the write queue: the rollback is an ordinary logged change', async () => {
      await trackAs({ userId: 'u' }, async () => {
        await ns().set('a:3', { power: 10 })
        await ns().set('a:3', { power: 20 })
      })
      await cache.flush()
      const r = await tracker.rollback(
        'derived_stats',
        'a:3',
        { toVersion: 1 },
        { writer: ns(), userId: 'user:gm', systemId: 'admin-tool' },
      )
      expect(r).toMatchObject({ changed: true, version: 3 })
      expect(await ns().get('a:3')).toEqual({ power: 10 })
      await cache.flush()
      const history = await tracker.history('derived_stats', 'a:3')
      expect(history.map((h) => [h.version, h.newValue])).toEqual([
        [1, { power: 10 }],
        [2, { power: 20 }],
        [3, { power: 10 }],
      ])
    })
  })
}

describe('tracking of write-behind writes across two instances (shared Redis L2 and queue)', () => {
  let db: TestDatabase
  let client: AnyRedisClient
  const prefix = `wbt${randomUUID().slice(0, 8)}`
  beforeAll(async () => {
    db = await openDatabase('postgres')
    client = await redis()
  })
  afterAll(async () => {
    const c = client as unknown as ReturnType<typeof createClient>
    for await (const keys of c.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await c.unlink(keys)
    }
    await client?.close()
    await db?.close()
  })

  it('no acknowledged write is missing from the log; each chain verifies and ends at the stored state', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    const tracker = createStateTracker({ log, systemId: 'game-server' })
    const l3 = createPrismaStore({ prisma: db.prisma })
    const queues = ['a', 'b'].map((id) =>
      createRedisWriteQueue({ client, prefix, name: 'q', consumer: id }),
    )
    const buses = ['a', 'b'].map((id) => createRedisBus({ client, prefix, instanceId: id }))
    const make = (i: number) =>
      createTieredCache<Spaces>({
        l1: createMemCache(),
        l2: createRedisStore({ client, prefix }),
        l3,
        queue: queues[i],
        bus: buses[i],
        namespaces: { derived_stats: behind },
        writeBehind: { interval: 5, linger: 0 },
        tracking: tracker.writeTracking(['derived_stats']),
      })
    const caches = [make(0), make(1)]
    const acked = new Map<string, number[]>()
    const actors = Array.from({ length: 8 }, (_, i) => `actor:${i}`)
    await Promise.all(
      caches.map((c, side) =>
        trackAs({ userId: `writer:${side}` }, async () => {
          for (let i = 0; i < 40; i++) {
            const key = actors[(i * 3 + side) % actors.length] as string
            const r = await c.namespace('derived_stats').set(key, { power: side * 1000 + i })
            acked.set(key, [...(acked.get(key) ?? []), r.version])
          }
        }),
      ),
    )
    for (const c of caches) await c.flush()
    for (const c of caches) await c.close()
    for (const key of actors) {
      const history = await tracker.history('derived_stats', key)
      const versions = (acked.get(key) ?? []).sort((x, y) => x - y)
      expect(history.map((r) => r.version)).toEqual(versions)
      expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1))
      const stored = await l3.namespace<Stats>('derived_stats').get(key)
      expect(stored?.value).toEqual(history.at(-1)?.newValue)
      expect(
        await tracker.verify('derived_stats', key, {
          stored: { exists: true, value: stored?.value, version: stored?.version },
        }),
      ).toMatchObject({ ok: true })
    }
    for (const q of queues) await q.close()
    for (const b of buses) await b.close()
    await l3.close()
  }, 120_000)

  it('a tracked write-behind namespace over an in-process queue persists on close', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    const tracker = createStateTracker({ log, systemId: 'game-server' })
    const l3 = createPrismaStore({ prisma: db.prisma })
    const cache = createTieredCache<Spaces>({
      l1: createMemCache(),
      l2: createRedisStore({ client, prefix: `${prefix}x` }),
      l3,
      queue: createMemoryWriteQueue(),
      namespaces: { derived_stats: behind },
      writeBehind: { autoStart: false },
      tracking: tracker.writeTracking(['derived_stats']),
    })
    await trackAs({ userId: 'u' }, () =>
      cache.namespace('derived_stats').set('closing', { power: 1 }),
    )
    await cache.close()
    expect((await tracker.history('derived_stats', 'closing')).map((r) => r.version)).toEqual([1])
    await l3.close()
  })
})
