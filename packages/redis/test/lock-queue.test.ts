import { createHash } from 'node:crypto'
import type { QueueDelivery, QueuedWrite } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnyRedisClient,
  createRedisLockProvider,
  createRedisWriteQueue,
  type RedisWriteQueue,
} from '../src/index.js'
import { blockedClients, connect, eventually } from './helpers.js'
import { type RedisServer, startRedis } from './servers.js'

let server: RedisServer
let client: AnyRedisClient
const others: AnyRedisClient[] = []
const queues: RedisWriteQueue<unknown>[] = []

/**
 * Claim timeouts. Where a test needs a takeover, the consumer taking over uses SHORT and polls
 * until the entry has been idle that long; where nothing may be taken over, consumers use NEVER,
 * far longer than any test, so a slow machine cannot turn "not yet" into "already".
 */
const SHORT = 30
const NEVER = 600_000

/** Claims until something comes back (the entries became stale), within a generous bound. */
async function claimOnceStale<T>(q: RedisWriteQueue<T>, max: number): Promise<QueueDelivery<T>[]> {
  let got: QueueDelivery<T>[] = []
  await eventually(
    async () => {
      got = await q.claim(max)
      return got.length > 0
    },
    20_000,
    'entries to become stale',
  )
  return got
}

beforeAll(async () => {
  server = await startRedis()
  client = await connect(server.url)
}, 30_000)
afterAll(async () => {
  for (const q of queues) await q.close()
  for (const c of others) await c.close()
  await client?.close()
  await server?.stop()
})

const write = (key: string, version = 1): QueuedWrite => ({
  namespace: 'derived_stats',
  key,
  op: 'set',
  value: { hp: version, at: new Date(0) },
  version,
  expiresAt: null,
  tags: [],
  enqueuedAt: 1,
})

function queue(
  name: string,
  extra: Partial<Parameters<typeof createRedisWriteQueue>[0]> = {},
): RedisWriteQueue<QueuedWrite> {
  const q = createRedisWriteQueue<QueuedWrite>({ client, name, prefix: 'wq', ...extra })
  queues.push(q as RedisWriteQueue<unknown>)
  return q
}

describe('redis lock provider', () => {
  it('is exclusive across providers, fenced, and released only by its owner', async () => {
    const one = createRedisLockProvider({ client, prefix: 'lk' })
    const second = await connect(server.url)
    others.push(second)
    const two = createRedisLockProvider({ client: second, prefix: 'lk' })
    // Lock TTLs far longer than the test: nothing here may expire on a slow machine.
    const a = await one.acquire('actor:1', { ttl: NEVER })
    expect(a).toBeDefined()
    expect(await two.acquire('actor:1', { ttl: NEVER })).toBeUndefined()
    const waiting = two.acquire('actor:1', { ttl: NEVER, waitMs: 20_000, retryDelayMs: 20 })
    expect(await a!.release()).toBe(true)
    const b = await waiting
    expect(b).toBeDefined()
    expect(b!.fence).toBeGreaterThan(a!.fence)
    expect(await a!.release()).toBe(false) // not the owner any more
    expect(await a!.extend(1000)).toBe(false)
    expect(await b!.extend(2 * NEVER)).toBe(true)
    const tag = createHash('sha1').update('actor:1').digest('hex')
    expect(Number(await server.cli('PTTL', `lk:lock:{${tag}}:actor:1`))).toBeGreaterThan(NEVER)
    expect(await b!.release()).toBe(true)
  })

  it('expires so a dead holder does not block forever', async () => {
    const locks = createRedisLockProvider({ client, prefix: 'lk2' })
    await locks.acquire('r', { ttl: 50 })
    const next = await locks.acquire('r', { ttl: NEVER, waitMs: 20_000, retryDelayMs: 10 })
    expect(next).toBeDefined()
  })

  it('rejects bad arguments before sending anything', async () => {
    const locks = createRedisLockProvider({ client, prefix: 'lk3' })
    await expect(locks.acquire('', { ttl: 10 })).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    await expect(locks.acquire('r', { ttl: -1 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
    expect(await server.cli('KEYS', 'lk3:*')).toBe('')
  })
})

describe('redis streams write queue', () => {
  it('acknowledges after XADD, delivers once, keeps entries until acked, then deletes them', async () => {
    const q = queue('basic')
    await q.enqueue([write('a'), write('b'), write('c')])
    expect(await q.stats()).toEqual({ ready: 3, inFlight: 0, capacity: 100_000 })
    const first = await q.claim(2)
    expect(first.map((d) => [d.item.key, d.attempts])).toEqual([
      ['a', 1],
      ['b', 1],
    ])
    expect(first[0]?.item.value).toEqual({ hp: 1, at: new Date(0) })
    expect(await q.stats()).toMatchObject({ ready: 1, inFlight: 2 })
    await q.ack([first[0]!.id])
    await q.release([first[1]!.id])
    const second = await q.claim(10)
    expect(second.map((d) => [d.item.key, d.attempts])).toEqual([
      ['c', 1],
      ['b', 2],
    ])
    await q.ack(second.map((d) => d.id))
    expect(await q.stats()).toMatchObject({ ready: 0, inFlight: 0 })
    expect(await server.cli('XLEN', q.stream)).toBe('0')
  })

  it('rejects a batch over capacity with QueueFullError and adds none of it', async () => {
    const q = queue('full', { capacity: 3 })
    await q.enqueue([write('a'), write('b')])
    await expect(q.enqueue([write('c'), write('d')])).rejects.toMatchObject({
      code: 'E_QUEUE_FULL',
      capacity: 3,
    })
    expect((await q.stats()).ready).toBe(2)
    const claimed = await q.claim(2)
    await expect(q.enqueue([write('c'), write('d')])).rejects.toBeInstanceOf(Error)
    await q.ack(claimed.map((d) => d.id))
    await q.enqueue([write('c'), write('d')])
  })

  it('lets another consumer take over entries a dead consumer never acked', async () => {
    const dead = queue('takeover', { consumer: 'dead' })
    const patient = queue('takeover', { consumer: 'alive', claimTimeout: NEVER })
    const eager = queue('takeover', { consumer: 'alive', claimTimeout: SHORT })
    await dead.enqueue([write('x'), write('y')])
    expect(await dead.claim(10)).toHaveLength(2)
    expect(await patient.claim(10)).toHaveLength(0) // claimed, not stale for this timeout
    const taken = await claimOnceStale(eager, 10)
    expect(taken.map((d) => [d.item.key, d.attempts])).toEqual([
      ['x', 2],
      ['y', 2],
    ])
    await eager.ack(taken.map((d) => d.id))
    expect(await eager.stats()).toMatchObject({ ready: 0, inFlight: 0 })
  })

  it('skips entries deleted after being claimed (XAUTOCLAIM gaps)', async () => {
    const dead = queue('gaps', { consumer: 'dead' })
    const alive = queue('gaps', { consumer: 'alive', claimTimeout: SHORT })
    await dead.enqueue([write('x'), write('y')])
    const claimed = await dead.claim(10)
    await server.cli('XDEL', dead.stream, claimed[0]!.id)
    const taken = await claimOnceStale(alive, 10)
    expect(taken.map((d) => d.item.key)).toEqual(['y'])
  })

  it('wakes a blocked consumer when an entry arrives', async () => {
    const q = queue('blocking')
    const pending = q.claim(10, { blockMs: 20_000 })
    // enqueue only once the read is blocked in Redis: the test is about waking it
    await eventually(async () => (await blockedClients(server)) === 1, 20_000, 'a blocked read')
    await q.enqueue([write('late')])
    expect((await pending).map((d) => d.item.key)).toEqual(['late'])
  })

  it('recreates its group when Redis lost it', async () => {
    const q = queue('regroup')
    await q.enqueue([write('a')])
    await server.cli('DEL', q.stream)
    await q.enqueue([write('b')])
    expect((await q.claim(10)).map((d) => d.item.key)).toEqual(['b'])
  })

  it('rejects what it cannot serialize and bad options, sending nothing', async () => {
    const q = queue('bad')
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    await expect(q.enqueue([{ ...write('a'), value: cyclic }])).rejects.toMatchObject({
      code: 'E_SERIALIZATION',
    })
    await expect(q.claim(0)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    expect(() => queue('bad name!')).toThrow(/name/)
    expect(() => queue('x', { capacity: 0 })).toThrow(/capacity/)
    expect(await server.cli('EXISTS', q.stream)).toBe('0')
  })
})

describe('redis streams write queue under contention', () => {
  it('gives every blocking claim its own deadline, one at a time, and loses nothing', async () => {
    // Non-blocking commands get 2 s (far above any reply time here); blocking reads must outlive it.
    const commandTimeout = 2_000
    const q = queue('blocking2', { commandTimeout })
    expect(await q.claim(1, { blockMs: 50 })).toEqual([])
    const waiting = [q.claim(1, { blockMs: 20_000 }), q.claim(1, { blockMs: 20_000 })]
    await eventually(async () => (await blockedClients(server)) === 1, 20_000, 'a blocked read')
    // Blocked for longer than commandTimeout: a read bounded by it alone would have failed.
    // (A sleep that only has to last at least this long: a slow machine cannot break it.)
    await new Promise((r) => setTimeout(r, commandTimeout + 500))
    await q.enqueue([write('late1'), write('late2')])
    const got = (await Promise.all(waiting)).flat().map((d) => d.item.key)
    expect(got.sort()).toEqual(['late1', 'late2'])
  })

  it('closes at once while a blocking claim waits', async () => {
    const q = queue('closing')
    // Blocks far longer than the test: close() returning at all proves it did not wait for it.
    const pending = q.claim(1, { blockMs: NEVER })
    await eventually(async () => (await blockedClients(server)) === 1, 20_000, 'a blocked read')
    await q.close()
    await expect(pending).rejects.toBeInstanceOf(Error)
    await expect(q.claim(1)).resolves.toEqual([])
  })

  it('ignores a release from a consumer that no longer holds the entry', async () => {
    const slow = queue('holder', { consumer: 'slow' })
    // One consumer, "fast", through two handles: one takes over once the entry is SHORT ms
    // stale; the other never reclaims, so checking that nothing is ready cannot race a timeout.
    const takeover = queue('holder', { consumer: 'fast', claimTimeout: SHORT })
    const fast = queue('holder', { consumer: 'fast', claimTimeout: NEVER })
    await slow.enqueue([write('job')])
    const [mine] = await slow.claim(1)
    const [taken] = await claimOnceStale(takeover, 1)
    expect(taken).toMatchObject({ id: mine?.id, attempts: 2 })
    await slow.release([mine!.id]) // too late: fast holds it now
    expect(await fast.claim(1)).toEqual([])
    expect(await fast.stats()).toMatchObject({ ready: 0, inFlight: 1 })
    await fast.ack([taken!.id])
    expect(await fast.stats()).toMatchObject({ ready: 0, inFlight: 0 })
  })

  it('reports stats after Redis lost the group', async () => {
    const q = queue('lostgroup')
    await q.enqueue([write('a')])
    await server.cli('DEL', q.stream)
    await q.enqueue([write('b')])
    expect(await q.stats()).toMatchObject({ ready: 1, inFlight: 0 })
  })
})
