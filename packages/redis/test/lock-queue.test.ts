import { createHash } from 'node:crypto'
import type { QueuedWrite } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnyRedisClient,
  createRedisLockProvider,
  createRedisWriteQueue,
  type RedisWriteQueue,
} from '../src/index.js'
import { connect } from './helpers.js'
import { type RedisServer, startRedis } from './servers.js'

let server: RedisServer
let client: AnyRedisClient
const queues: RedisWriteQueue<unknown>[] = []

beforeAll(async () => {
  server = await startRedis()
  client = await connect(server.url)
}, 30_000)
afterAll(async () => {
  for (const q of queues) await q.close()
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
    const two = createRedisLockProvider({ client: await connect(server.url), prefix: 'lk' })
    const a = await one.acquire('actor:1', { ttl: 5_000 })
    expect(a).toBeDefined()
    expect(await two.acquire('actor:1', { ttl: 5_000 })).toBeUndefined()
    const waiting = two.acquire('actor:1', { ttl: 5_000, waitMs: 3_000, retryDelayMs: 20 })
    expect(await a!.release()).toBe(true)
    const b = await waiting
    expect(b).toBeDefined()
    expect(b!.fence).toBeGreaterThan(a!.fence)
    expect(await a!.release()).toBe(false) // not the owner any more
    expect(await a!.extend(1000)).toBe(false)
    expect(await b!.extend(10_000)).toBe(true)
    const tag = createHash('sha1').update('actor:1').digest('hex')
    expect(Number(await server.cli('PTTL', `lk:lock:{${tag}}:actor:1`))).toBeGreaterThan(5_000)
    expect(await b!.release()).toBe(true)
  })

  it('expires so a dead holder does not block forever', async () => {
    const locks = createRedisLockProvider({ client, prefix: 'lk2' })
    await locks.acquire('r', { ttl: 50 })
    const next = await locks.acquire('r', { ttl: 1000, waitMs: 2000, retryDelayMs: 10 })
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
    const dead = queue('takeover', { consumer: 'dead', claimTimeout: 50 })
    const alive = queue('takeover', { consumer: 'alive', claimTimeout: 50 })
    await dead.enqueue([write('x'), write('y')])
    expect(await dead.claim(10)).toHaveLength(2)
    expect(await alive.claim(10)).toHaveLength(0) // claimed, not yet stale
    await new Promise((r) => setTimeout(r, 80))
    const taken = await alive.claim(10)
    expect(taken.map((d) => [d.item.key, d.attempts])).toEqual([
      ['x', 2],
      ['y', 2],
    ])
    await alive.ack(taken.map((d) => d.id))
    expect(await alive.stats()).toMatchObject({ ready: 0, inFlight: 0 })
  })

  it('skips entries deleted after being claimed (XAUTOCLAIM gaps)', async () => {
    const dead = queue('gaps', { consumer: 'dead', claimTimeout: 30 })
    const alive = queue('gaps', { consumer: 'alive', claimTimeout: 30 })
    await dead.enqueue([write('x'), write('y')])
    const claimed = await dead.claim(10)
    await server.cli('XDEL', dead.stream, claimed[0]!.id)
    await new Promise((r) => setTimeout(r, 60))
    const taken = await alive.claim(10)
    expect(taken.map((d) => d.item.key)).toEqual(['y'])
  })

  it('wakes a blocked consumer when an entry arrives', async () => {
    const q = queue('blocking')
    const pending = q.claim(10, { blockMs: 3000 })
    await new Promise((r) => setTimeout(r, 50))
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
    const q = queue('blocking2', { commandTimeout: 200 })
    expect(await q.claim(1, { blockMs: 50 })).toEqual([])
    const waiting = [q.claim(1, { blockMs: 2000 }), q.claim(1, { blockMs: 2000 })]
    await new Promise((r) => setTimeout(r, 400))
    await q.enqueue([write('late1'), write('late2')])
    const got = (await Promise.all(waiting)).flat().map((d) => d.item.key)
    expect(got.sort()).toEqual(['late1', 'late2'])
  })

  it('closes at once while a blocking claim waits', async () => {
    const q = queue('closing')
    const pending = q.claim(1, { blockMs: 5000 })
    await new Promise((r) => setTimeout(r, 100))
    const t0 = Date.now()
    await q.close()
    expect(Date.now() - t0).toBeLessThan(1000)
    await expect(pending).rejects.toBeInstanceOf(Error)
    await expect(q.claim(1)).resolves.toEqual([])
  })

  it('ignores a release from a consumer that no longer holds the entry', async () => {
    const slow = queue('holder', { consumer: 'slow', claimTimeout: 30 })
    const fast = queue('holder', { consumer: 'fast', claimTimeout: 30 })
    await slow.enqueue([write('job')])
    const [mine] = await slow.claim(1)
    await new Promise((r) => setTimeout(r, 60))
    const [taken] = await fast.claim(1)
    expect(taken?.id).toBe(mine?.id)
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
