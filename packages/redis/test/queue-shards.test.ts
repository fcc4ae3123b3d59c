import type { QueueDelivery, QueuedWrite } from '@actor-cache/core'
import { createCluster } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnyRedisClient,
  createRedisWriteQueue,
  keySlot,
  type RedisWriteQueue,
  type RedisWriteQueueOptions,
} from '../src/index.js'
import { shardOf, shardStreams, writeShardKey } from '../src/queue-shards.js'
import { blockedClients, connect, eventually, intercept } from './helpers.js'
import { type RedisServer, startCluster, startRedis, type TestCluster } from './servers.js'

let server: RedisServer
let cluster: TestCluster
let client: AnyRedisClient
let clustered: AnyRedisClient
const queues: RedisWriteQueue<unknown>[] = []

/** Claim timeouts: SHORT where a test needs a takeover, NEVER where none may happen. */
const SHORT = 30
const NEVER = 600_000

beforeAll(async () => {
  ;[server, cluster] = await Promise.all([startRedis(), startCluster(3)])
  client = await connect(server.url)
  const c = createCluster({ rootNodes: cluster.rootNodes })
  c.on('error', () => {})
  await c.connect()
  clustered = c as unknown as AnyRedisClient
}, 90_000)
afterAll(async () => {
  for (const q of queues) await q.close()
  await client?.close()
  await clustered?.close()
  await server?.stop()
  await cluster?.stop()
})

const write = (key: string, version = 1, namespace = 'derived_stats'): QueuedWrite => ({
  namespace,
  key,
  op: 'set',
  value: { hp: version },
  version,
  expiresAt: null,
  tags: [],
  enqueuedAt: 1,
})

function queue<T = QueuedWrite>(
  name: string,
  extra: Partial<RedisWriteQueueOptions<T>> = {},
): RedisWriteQueue<T> {
  const q = createRedisWriteQueue<T>({ client, name, prefix: 'sq', shards: 3, ...extra })
  queues.push(q as RedisWriteQueue<unknown>)
  return q
}

/** A key whose writes go to shard `shard` of 3. */
function keyIn(shard: number, tag: string): string {
  for (let i = 0; i < 10_000; i++) {
    const key = `${tag}:${i}`
    if (shardOf(writeShardKey(write(key)), 3) === shard) return key
  }
  throw new Error('no key found')
}

/** The stream id of a delivery of a sharded queue, as [shard, ms, seq]. */
function position(id: string): [number, bigint, bigint] {
  const [shard, stream] = id.split(':') as [string, string]
  const [ms, seq] = stream.split('-') as [string, string]
  return [Number(shard), BigInt(ms), BigInt(seq)]
}

/** Enqueues `versions` writes of each key, one batch per version (batches span the shards). */
async function fill(q: RedisWriteQueue<QueuedWrite>, keys: string[], versions: number) {
  for (let v = 1; v <= versions; v++) await q.enqueue(keys.map((k) => write(k, v)))
}

/** Two consumers claim and ack concurrently until `total` deliveries; what each one got. */
async function drainTogether(
  consumers: RedisWriteQueue<QueuedWrite>[],
  total: number,
): Promise<QueueDelivery<QueuedWrite>[][]> {
  let delivered = 0
  const got = consumers.map(() => [] as QueueDelivery<QueuedWrite>[])
  await Promise.all(
    consumers.map(async (q, c) => {
      for (let round = 0; round < 5_000 && delivered < total; round++) {
        const batch = await q.claim(7 + c * 6)
        got[c]?.push(...batch)
        delivered += batch.length
        await q.ack(batch.map((d) => d.id))
      }
    }),
  )
  return got
}

/** Checks per-key order: every consumer sees a key's versions rising, all in one stream. */
function expectPerKeyOrder(got: QueueDelivery<QueuedWrite>[][], keys: string[], versions: number) {
  const all = got.flat()
  expect(all).toHaveLength(keys.length * versions)
  expect(new Set(all.map((d) => d.id)).size).toBe(all.length) // each write once
  for (const mine of got) {
    const last = new Map<string, number>()
    for (const d of mine) {
      expect(d.item.version).toBeGreaterThan(last.get(d.item.key) ?? 0)
      last.set(d.item.key, d.item.version)
    }
  }
  const byKey = new Map<string, QueueDelivery<QueuedWrite>[]>()
  for (const d of all) byKey.set(d.item.key, [...(byKey.get(d.item.key) ?? []), d])
  for (const [key, ds] of byKey) {
    const shards = new Set(ds.map((d) => position(d.id)[0]))
    expect(shards.size, key).toBe(1)
    const inStream = [...ds].sort((a, b) => {
      const [, am, as] = position(a.id)
      const [, bm, bs] = position(b.id)
      return am === bm ? Number(as - bs) : Number(am - bm)
    })
    expect(inStream.map((d) => d.item.version)).toEqual(
      Array.from({ length: versions }, (_, i) => i + 1),
    )
  }
  expect(new Set(all.map((d) => position(d.id)[0])).size).toBe(3) // all shards used
}

describe('shard layout', () => {
  it('keeps the historical stream with one shard and spreads tags over the slots', () => {
    expect(shardStreams('ac', 'wb', 1)).toEqual(['ac:wq:{wb}'])
    for (const n of [2, 3, 6, 64]) {
      const slots = shardStreams('ac', 'wb', n).map(keySlot)
      slots.forEach((slot, i) => {
        expect(slot).toBeGreaterThanOrEqual(Math.floor((i * 16384) / n))
        expect(slot).toBeLessThan(Math.floor(((i + 1) * 16384) / n))
      })
    }
    expect(shardStreams('ac', 'wb', 3)).toEqual(shardStreams('ac', 'wb', 3)) // deterministic
  })

  it('spreads keys about evenly and keeps a key on one shard', () => {
    const counts = [0, 0, 0]
    for (let i = 0; i < 3000; i++) {
      const s = shardOf(writeShardKey(write(`actor:${i}`)), 3)
      counts[s] = (counts[s] ?? 0) + 1
      expect(shardOf(writeShardKey(write(`actor:${i}`, 9)), 3)).toBe(s)
    }
    for (const c of counts) expect(c).toBeGreaterThan(800)
    // the namespace counts too
    const a = Array.from({ length: 50 }, (_, i) =>
      shardOf(writeShardKey(write('k', 1, `n${i}`)), 3),
    )
    expect(new Set(a).size).toBe(3)
  })
})

describe('sharded write queue on one server', () => {
  it('delivers each write once, per key in order, to two consumers', async () => {
    const keys = Array.from({ length: 120 }, (_, i) => `actor:${i}`)
    const a = queue('order', { consumer: 'a', claimTimeout: NEVER })
    const b = queue('order', { consumer: 'b', claimTimeout: NEVER })
    await fill(a, keys, 5)
    const lengths = await Promise.all(a.streams.map((s) => server.cli('XLEN', s)))
    expect(lengths.map(Number).reduce((x, y) => x + y)).toBe(600)
    expect(lengths.every((l) => Number(l) > 100)).toBe(true)
    expect(await a.stats()).toEqual({ ready: 600, inFlight: 0, capacity: 100_000 })
    expectPerKeyOrder(await drainTogether([a, b], 600), keys, 5)
    expect(await b.stats()).toEqual({ ready: 0, inFlight: 0, capacity: 100_000 })
  })

  it('sums stats, releases to the right shard and counts attempts', async () => {
    const q = queue('release', { claimTimeout: NEVER })
    await q.enqueue([write(keyIn(0, 'r')), write(keyIn(1, 'r')), write(keyIn(2, 'r'))])
    const first = await q.claim(10)
    expect(first).toHaveLength(3)
    expect(await q.stats()).toMatchObject({ ready: 0, inFlight: 3 })
    await q.release(first.map((d) => d.id))
    expect(await q.stats()).toMatchObject({ ready: 3, inFlight: 0 })
    const again = await q.claim(10)
    expect(again.map((d) => d.attempts)).toEqual([2, 2, 2])
    expect(new Set(again.map((d) => position(d.id)[0]))).toEqual(new Set([0, 1, 2]))
    await q.ack(again.map((d) => d.id))
    expect(await q.stats()).toMatchObject({ ready: 0, inFlight: 0 })
  })

  it('lets another consumer take over what a dead one held, in every shard', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `t:${i}`)
    const dead = queue('takeover', { consumer: 'dead' })
    const alive = queue('takeover', { consumer: 'alive', claimTimeout: SHORT })
    await fill(dead, keys, 2)
    expect(await dead.claim(100)).toHaveLength(60)
    const taken: QueueDelivery<QueuedWrite>[] = []
    await eventually(
      async () => {
        const got = await alive.claim(25)
        taken.push(...got)
        await alive.ack(got.map((d) => d.id))
        return taken.length >= 60
      },
      20_000,
      'all stale entries taken over',
    )
    expect(taken).toHaveLength(60)
    expect(taken.every((d) => d.attempts === 2)).toBe(true)
    expect(new Set(taken.map((d) => position(d.id)[0])).size).toBe(3)
    expect(await alive.stats()).toMatchObject({ ready: 0, inFlight: 0 })
  })

  it('wakes a blocked claim when an entry arrives in any shard', async () => {
    const q = queue('blocking')
    for (const shard of [0, 1, 2]) {
      const pending = q.claim(10, { blockMs: 20_000 })
      await eventually(async () => (await blockedClients(server)) === 1, 20_000, 'a blocked read')
      await q.enqueue([write(keyIn(shard, 'late'))])
      const got = await pending
      expect(got.map((d) => position(d.id)[0])).toEqual([shard])
      await q.ack(got.map((d) => d.id))
    }
  })

  it('refuses a batch when one shard is full and withdraws it from the others', async () => {
    const q = queue('full', { capacity: 6, claimTimeout: NEVER }) // 2 per shard
    await q.enqueue([write(keyIn(0, 'f'), 1), write(keyIn(0, 'f'), 2)])
    await expect(q.enqueue([write(keyIn(1, 'f')), write(keyIn(0, 'g'))])).rejects.toMatchObject({
      code: 'E_QUEUE_FULL',
      capacity: 6,
    })
    expect(await Promise.all(q.streams.map((s) => server.cli('XLEN', s)))).toEqual(['2', '0', '0'])
    await q.enqueue([write(keyIn(1, 'f')), write(keyIn(2, 'f'))]) // other shards have room
    expect(await q.stats()).toMatchObject({ ready: 4, inFlight: 0, capacity: 6 })
  })

  it('shards items of any shape by shardKey', async () => {
    const q = queue<{ id: string; n: number }>('custom', { shardKey: (item) => item.id })
    await q.enqueue([
      { id: 'x', n: 1 },
      { id: 'x', n: 2 },
    ])
    expect((await q.claim(10)).map((d) => d.item.n)).toEqual([1, 2])
  })

  it('closes at once while a blocking claim waits', async () => {
    const q = queue('closing')
    const pending = q.claim(1, { blockMs: NEVER })
    await eventually(async () => (await blockedClients(server)) === 1, 20_000, 'a blocked read')
    await q.close()
    await pending.catch(() => undefined) // cut short: rejected, or empty between two slices
    await expect(q.claim(1)).resolves.toEqual([])
  })
})

describe('bad shard options and input', () => {
  /** The test client, counting the commands sent through it. */
  function counting(): { client: AnyRedisClient; sent: () => number } {
    let sent = 0
    const counted = () => {
      sent++
      return undefined
    }
    return { client: intercept(client, counted, ['sendCommand', 'duplicate']), sent: () => sent }
  }

  it('rejects bad shards values with a typed error naming the option, sending nothing', async () => {
    const c = counting()
    for (const shards of [0, -1, 1.5, 65, Number.NaN, Number.POSITIVE_INFINITY, '3', 1e9]) {
      expect(() =>
        createRedisWriteQueue({ client: c.client, name: 'bad', shards: shards as number }),
      ).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION', option: 'shards' }))
    }
    expect(() =>
      createRedisWriteQueue({ client: c.client, name: 'bad', shards: 4, capacity: 3 }),
    ).toThrow(expect.objectContaining({ option: 'capacity' }))
    expect(() =>
      createRedisWriteQueue({ client: c.client, name: 'bad', shardKey: 'k' as never }),
    ).toThrow(expect.objectContaining({ option: 'shardKey' }))
    const q = createRedisWriteQueue<unknown>({ client: c.client, name: 'bad', shards: 3 })
    queues.push(q)
    await expect(q.enqueue([{ no: 'key' }])).rejects.toMatchObject({ option: 'shardKey' })
    await expect(q.ack(['9:1-0'])).rejects.toMatchObject({ option: 'ids' })
    await expect(q.release(['1-0'])).rejects.toMatchObject({ option: 'ids' })
    expect(c.sent()).toBe(0)
    expect(await server.cli('KEYS', 'ac:wq:*')).toBe('')
  })
})

describe('sharded write queue on a 3-master cluster', () => {
  /** The port of the master that serves `slot`, from CLUSTER NODES. */
  async function masterOf(slot: number): Promise<string> {
    const lines = (await cluster.nodes[0]!.cli('CLUSTER', 'NODES')).split('\n')
    for (const line of lines) {
      const parts = line.split(' ')
      if (!parts[2]?.includes('master')) continue
      for (const range of parts.slice(8)) {
        const [lo, hi = lo] = range.split('-').map(Number) as [number, number?]
        if (slot >= lo && slot <= (hi as number)) return parts[1] ?? ''
      }
    }
    throw new Error(`no master serves slot ${slot}`)
  }

  function clusterQueue(name: string, extra: Partial<RedisWriteQueueOptions> = {}) {
    return queue(name, { client: clustered, ...extra })
  }

  it('puts its streams on different masters, where the writes land', async () => {
    const q = clusterQueue('spread', { shards: 3 })
    const slots = await Promise.all(
      q.streams.map(async (s) => Number(await cluster.nodes[0]!.cli('CLUSTER', 'KEYSLOT', s))),
    )
    expect(slots).toEqual(q.streams.map(keySlot))
    expect(new Set(await Promise.all(slots.map(masterOf))).size).toBe(3)
    await fill(
      q,
      Array.from({ length: 60 }, (_, i) => `s:${i}`),
      1,
    )
    // each master holds exactly one of the streams, and it has entries
    const held = await Promise.all(
      cluster.nodes.map(async (n) => {
        const mine = []
        for (const s of q.streams) if ((await n.cli('EXISTS', s)) === '1') mine.push(s)
        return mine
      }),
    )
    expect(held.map((h) => h.length)).toEqual([1, 1, 1])
    for (const n of cluster.nodes) expect(Number(await n.cli('DBSIZE'))).toBeGreaterThan(0)
    expect((await q.stats()).ready).toBe(60)
  })

  it('delivers each write once, per key in order, to two consumers', async () => {
    const keys = Array.from({ length: 90 }, (_, i) => `actor:${i}`)
    const a = clusterQueue('order', { consumer: 'a', claimTimeout: NEVER })
    const b = clusterQueue('order', { consumer: 'b', claimTimeout: NEVER })
    await fill(a, keys, 4)
    expectPerKeyOrder(await drainTogether([a, b], 360), keys, 4)
    expect(await a.stats()).toMatchObject({ ready: 0, inFlight: 0 })
  })

  it('takes over a dead consumer’s entries in every shard', async () => {
    const dead = clusterQueue('takeover', { consumer: 'dead' })
    const alive = clusterQueue('takeover', { consumer: 'alive', claimTimeout: SHORT })
    await fill(
      dead,
      Array.from({ length: 30 }, (_, i) => `t:${i}`),
      1,
    )
    expect(await dead.claim(100)).toHaveLength(30)
    const taken: QueueDelivery<QueuedWrite>[] = []
    await eventually(
      async () => {
        const got = await alive.claim(100)
        taken.push(...got)
        await alive.ack(got.map((d) => d.id))
        return taken.length >= 30
      },
      20_000,
      'all stale entries taken over',
    )
    expect(new Set(taken.map((d) => position(d.id)[0])).size).toBe(3)
    expect(await alive.stats()).toMatchObject({ ready: 0, inFlight: 0 })
  })

  it('wakes a blocked claim when an entry arrives', async () => {
    const q = clusterQueue('blocking')
    const blocked = async () => {
      const counts = await Promise.all(cluster.nodes.map((n) => blockedClients(n)))
      return counts.reduce((x, y) => x + y) === 1
    }
    const pending = q.claim(10, { blockMs: 20_000 })
    await eventually(blocked, 20_000, 'a blocked read')
    await q.enqueue([write(keyIn(2, 'late'))])
    expect((await pending).map((d) => d.item.key)).toEqual([keyIn(2, 'late')])
  })
})
