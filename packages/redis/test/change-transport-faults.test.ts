import type { ChangeRecord, TransportRead } from '@actor-cache/core'
import { createCluster } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnyRedisClient,
  createRedisChangeTransport,
  keySlot,
  type RedisChangeReader,
  type RedisChangeTransport,
  type SingleClient,
} from '../src/index.js'
import { connect, eventually } from './helpers.js'
import {
  freePort,
  type RedisServer,
  startCluster,
  startRedis,
  type TestCluster,
} from './servers.js'

let server: RedisServer
let cluster: TestCluster
let clustered: AnyRedisClient
const clients: AnyRedisClient[] = []
const transports: RedisChangeTransport[] = []

/** Command deadline: far above any reply time on a loaded machine. */
const PATIENT = 10_000

beforeAll(async () => {
  ;[server, cluster] = await Promise.all([startRedis(), startCluster(3)])
  const c = createCluster({ rootNodes: cluster.rootNodes })
  c.on('error', () => {})
  await c.connect()
  clustered = c as unknown as AnyRedisClient
}, 90_000)
afterAll(async () => {
  for (const t of transports) await t.close()
  for (const c of clients) await c.close().catch(() => c.destroy())
  await clustered?.close()
  await server?.stop()
  await cluster?.stop()
})

function record(entityId: string, version: number): ChangeRecord {
  return {
    id: `${entityId}@${version}`,
    entityType: 'primary_core',
    entityId,
    changeType: 'update',
    oldValue: null,
    newValue: { hp: version },
    timestamp: 1_700_000_000_000,
    userId: 'user:1',
    systemId: 'test',
    version,
  }
}

async function drain(reader: RedisChangeReader, max = 100): Promise<TransportRead[]> {
  const reads: TransportRead[] = []
  for (let i = 0; i < 10_000; i++) {
    const r = await reader.read(max)
    reads.push(r)
    if (!r.more && r.records.length === 0) return reads
  }
  throw new Error('the reader never ran dry')
}

const keyOf = (r: ChangeRecord) => `${r.entityId}@${r.version}`

describe('a restarted Redis', () => {
  it('is reported as lost once, then reading goes on', async () => {
    const client = await connect(server.url)
    clients.push(client)
    const t = createRedisChangeTransport({
      client,
      prefix: 'rs',
      shards: 2,
      commandTimeout: PATIENT,
    })
    transports.push(t)
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 600_000)
    await t.publish(lease!, [record('a', 1), record('b', 1)])
    expect(await drain(reader)).toSatisfy((reads: TransportRead[]) => !reads.some((r) => r.lost))

    await t.publish(lease!, [record('a', 2), record('b', 2)]) // lost with the restart
    await server.kill()
    await server.start()
    await eventually(async () => {
      try {
        await (client as SingleClient).sendCommand(['PING'])
        return true
      } catch {
        return false
      }
    })
    // the lease went with Redis' data: a relay takes it again, with a higher epoch
    const next = await t.acquireRelay('relay', 600_000)
    expect(next!.epoch).toBeGreaterThan(lease!.epoch)
    await t.publish(next!, [record('a', 3)])
    const read = await reader.read(100)
    expect(read.lost).toBe(true)
    const after = await drain(reader)
    expect(after.some((r) => r.lost)).toBe(false)
    await t.publish(next!, [record('a', 4), record('b', 4)])
    const reads = await drain(reader)
    expect(reads.some((r) => r.lost)).toBe(false)
    expect(
      reads
        .flatMap((r) => r.records)
        .map(keyOf)
        .sort(),
    ).toEqual(['a@4', 'b@4'])
  })

  it('a transport made from a url connects itself and closes its connections', async () => {
    const connected = async () =>
      Number(/connected_clients:(\d+)/.exec(await server.cli('INFO', 'clients'))?.[1])
    const before = await connected()
    const t = createRedisChangeTransport({
      url: server.url,
      prefix: 'url',
      commandTimeout: PATIENT,
    })
    const lease = await t.acquireRelay('relay', 30_000)
    const reader = await t.openReader() // adds the subscriber connection
    await t.publish(lease!, [record('a', 1)])
    expect((await reader.read(10)).records.map(keyOf)).toEqual(['a@1'])
    expect(await connected()).toBe(before + 2)
    await t.close()
    await eventually(async () => (await connected()) === before, 20_000, 'connections closed')
  })
})

describe('unreachable and stalled Redis', () => {
  it('a url nobody listens on fails with TierUnavailableError', async () => {
    const port = await freePort()
    const t = createRedisChangeTransport({ url: `redis://127.0.0.1:${port}`, commandTimeout: 2000 })
    for (let attempt = 0; attempt < 2; attempt++) {
      // each call tries to connect again
      await expect(t.acquireRelay('relay', 1000)).rejects.toMatchObject({
        code: 'E_TIER_UNAVAILABLE',
      })
    }
    await t.close()
  })

  it('a read past the deadline fails typed, and the next read reports lost', async () => {
    const client = await connect(server.url)
    clients.push(client)
    const t = createRedisChangeTransport({ client, prefix: 'stall', commandTimeout: 300 })
    transports.push(t)
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 600_000)
    await t.publish(lease!, [record('a', 1)])
    server.pause()
    try {
      await expect(reader.read(10)).rejects.toMatchObject({ code: 'E_TIER_UNAVAILABLE' })
    } finally {
      server.resume()
    }
    // the stalled read ran once Redis went on: its entry was handed over, never returned
    const read = await reader.read(10)
    expect(read.lost).toBe(true)
    expect((await reader.read(10)).lost).toBe(false)
  })
})

describe('on a 3-master cluster', () => {
  it('publishes to 4 shards on different masters and reads everything back', async () => {
    const t = createRedisChangeTransport({
      client: clustered,
      prefix: 'cl',
      shards: 4,
      commandTimeout: PATIENT,
    })
    transports.push(t)
    const nodesOf = async (keys: readonly string[]) => {
      const held = await Promise.all(
        cluster.nodes.map(async (n) => {
          let mine = 0
          for (const k of keys) if ((await n.cli('EXISTS', k)) === '1') mine++
          return mine
        }),
      )
      return held.filter((h) => h > 0).length
    }
    const reader = await t.openReader()
    const other = await t.openReader({ group: 'audit' })
    const lease = await t.acquireRelay('relay', 30_000)
    const entities = Array.from({ length: 60 }, (_, i) => `actor:${i}`)
    for (let v = 1; v <= 3; v++)
      await t.publish(
        lease!,
        entities.map((e) => record(e, v)),
      )
    await t.saveCheckpoint(lease!, 'cp-3')
    expect(new Set(t.streams.map(keySlot)).size).toBe(4)
    expect(await nodesOf(t.streams)).toBe(3)
    for (const r of [reader, other]) {
      const reads = await drain(r, 25)
      expect(reads.some((x) => x.lost)).toBe(false)
      expect(reads[0]?.checkpoint).toBe('cp-3')
      const got = reads.flatMap((x) => x.records)
      expect(got).toHaveLength(180)
      const last = new Map<string, number>()
      for (const rec of got) {
        expect(rec.version).toBe((last.get(rec.entityId) ?? 0) + 1)
        last.set(rec.entityId, rec.version)
      }
    }
    const waited = reader.wait(60_000, new AbortController().signal)
    await t.publish(lease!, [record('late', 1)])
    await waited
    expect((await reader.read(10)).records.map(keyOf)).toEqual(['late@1'])
    expect((await t.trim()).trimmed).toBe(180) // 'audit' has not read the late one
    await other.close() // named: stays, and keeps the late entry
    expect((await t.trim()).trimmed).toBe(0)
    await reader.close()
  })
})
