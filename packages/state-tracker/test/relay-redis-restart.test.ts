/**
 * Redis restarted mid-stream (a private redis-server without persistence, killed and started
 * again on its port): the streams, reader groups and the relay's checkpoint are gone. The relay
 * goes on from the feed position it had; readers find they lost entries, and subscriptions
 * re-read the log (PostgreSQL) from where they were. Nothing is missed or delivered twice.
 */
import type { ChangeRecord } from '@actor-cache/core'
import { privateRedis, type RedisServer } from '@actor-cache/test-utils/redis-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChangeRelay, createChangeStream, createStateTracker } from '../src/index.js'
import { postgresLog, type TestLog } from './logs.js'
import { type Client, connect, transportOn, until } from './relay-stack.js'
import { expectSequences, writeRounds } from './stream-helpers.js'

describe('Redis restarted under a change stream', () => {
  let server: RedisServer
  let client: Client
  let t: TestLog
  beforeAll(async () => {
    server = await privateRedis()
    client = await connect(server.url)
    t = await postgresLog()
  })
  afterAll(async () => {
    await client?.close().catch(() => {})
    await server?.kill()
    await t?.close()
  })

  it('resumes every subscription with no change missing or repeated', async () => {
    const log = t.log
    const tracker = createStateTracker({ log, systemId: 'restart-test' })
    const transport = transportOn(client, { shards: 3 })
    const relay = createChangeRelay({ log, transport, leaseTtl: 1000, pollInterval: 10 })
    relay.start()
    const streams = [0, 1].map(() => createChangeStream({ log, transport, pollInterval: 20 }))
    const type = 'restart_core'
    const actors = Array.from({ length: 12 }, (_, i) => `actor:${i}`)
    const subs = streams.map((s) => s.subscribe({ entityType: type }, { afterTime: 0 }))
    const got: ChangeRecord[][] = subs.map(() => [])
    const consuming = subs.map(async (sub, i) => {
      for await (const r of sub) got[i]?.push(r)
    })
    try {
      await Promise.all(subs.map((s) => s.start()))
      await writeRounds(tracker, type, actors, { from: 1, to: 5 })
      await until(() => got.every((g) => g.length === 60), 'the first 60 changes')

      await server.kill()
      // written while Redis is down: the relay cannot publish them
      await writeRounds(tracker, type, actors, { from: 6, to: 8 })
      await server.start()
      await writeRounds(tracker, type, actors, { from: 9, to: 12 })

      await until(() => got.every((g) => g.length >= 12 * 12), 'all 144 changes')
      for (const g of got) {
        expectSequences(g, new Map(actors.map((a) => [`${type}/${a}`, { from: 1, to: 12 }])))
      }
      // the readers saw the loss and the subscriptions re-read the log
      for (const s of streams) expect(s.stats().relay.losses).toBeGreaterThan(0)
      for (const sub of subs) expect(sub.stats().gapsUnresolved).toBe(0)
    } finally {
      await Promise.all(streams.map((s) => s.close()))
      await Promise.all(consuming)
      await relay.close()
      await transport.close()
    }
  }, 120_000)
})
