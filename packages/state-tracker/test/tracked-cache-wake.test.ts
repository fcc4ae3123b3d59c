/**
 * A relay that would read the log only once a minute, and a stream the tracker does not know of:
 * the changes the tracker and a cache it tracks log reach the subscriber only if the tracker
 * wakes the relay once they are committed. The test's timeout (well under a minute) fails it
 * otherwise.
 */
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaChangeLog, createPrismaStore } from '@actor-cache/prisma-store'
import { createTieredCache } from '@actor-cache/strategies'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChangeRelay, createChangeStream, createStateTracker, trackAs } from '../src/index.js'
import { openDatabase, type TestDatabase } from './logs.js'
import { type Client, connect, dropStreams, transportOn } from './relay-stack.js'
import { take } from './stream-helpers.js'

type Spaces = { wake_core: { hp: number }; wake_behind: { hp: number } }

describe("a tracked cache's writes wake the change-stream relay", () => {
  let client: Client
  let db: TestDatabase
  beforeAll(async () => {
    client = await connect()
    db = await openDatabase('postgres')
  })
  afterAll(async () => {
    await db?.close()
    if (client) await dropStreams(client)
    await client?.close()
  })

  it('trackChange, write-through sets and deletes, and a write-behind flush reach a subscriber without the poll', async () => {
    const transport = transportOn(client)
    const log = createPrismaChangeLog({ prisma: db.prisma })
    // nor between renewals of its lease (every third of leaseTtl)
    const relay = createChangeRelay({ log, transport, pollInterval: 60_000, leaseTtl: 180_000 })
    relay.start()
    const tracker = createStateTracker({ log, systemId: 'game-server', changeTransport: transport })
    const stream = createChangeStream({ log, transport })
    const l3 = createPrismaStore({ prisma: db.prisma })
    const cache = createTieredCache<Spaces>({
      l1: createMemCache(),
      l3,
      namespaces: {
        wake_core: { strategy: 'write_through' },
        wake_behind: { strategy: 'write_behind' },
      },
      writeBehind: { autoStart: false },
      tracking: tracker.writeTracking(['wake_core', 'wake_behind']),
    })
    const run = Date.now().toString(36)
    const versions = (records: { entityId: string; version: number }[]) =>
      records.map((r) => `${r.entityId.slice(run.length + 1)}@${r.version}`)
    try {
      const through = stream.subscribe({ entityType: 'wake_core' }, { fromNow: true })
      const behind = stream.subscribe({ entityType: 'wake_behind' }, { fromNow: true })
      await Promise.all([through.start(), behind.start()])
      await tracker.trackChange({
        entityType: 'wake_core',
        entityId: `${run}:t`,
        changeType: 'create',
        newValue: { hp: 1 },
        userId: 'user:1',
      })
      expect(versions(await take(through, 1))).toEqual(['t@1'])
      await trackAs({ userId: 'user:1', systemId: 'api' }, async () => {
        const core = cache.namespace('wake_core')
        await core.set(`${run}:a`, { hp: 1 })
        expect(versions(await take(through, 1))).toEqual(['a@1'])
        await core.set(`${run}:a`, { hp: 2 })
        await core.delete(`${run}:a`)
        expect(versions(await take(through, 2))).toEqual(['a@2', 'a@3'])

        const queued = cache.namespace('wake_behind')
        await queued.set(`${run}:b`, { hp: 1 })
        await queued.set(`${run}:c`, { hp: 1 })
        await cache.flush()
        const flushed = versions(await take(behind, 2)).sort()
        expect(flushed).toEqual(['b@1', 'c@1'])
      })
    } finally {
      await cache.close()
      await l3.close()
      await stream.close()
      await relay.close()
      await transport.close()
    }
  }, 30_000)
})
