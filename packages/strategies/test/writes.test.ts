import {
  ConflictError,
  createLocalBusHub,
  createMemoryDeadLetters,
  createMemoryWriteQueue,
  QueueFullError,
} from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import { createPrismaStore, type PrismaTier } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore, type RedisTier } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache, type TieredCacheOptions } from '../src/index.js'
import {
  clockPast,
  deferred,
  dropPrefix,
  eventually,
  intercept,
  interceptTier,
  nextTurn,
  postgres,
  redis,
  type TestDb,
  uid,
} from './helpers.js'

let db: TestDb
let client: AnyRedisClient
const prefix = `acs${uid()}`
let l2: RedisTier
let l3: PrismaTier
const open: TieredCache[] = []

beforeAll(async () => {
  db = await postgres()
  client = await redis()
  l2 = createRedisStore({ client, prefix })
  // A generous store timeout: these tests are not about it, and on a loaded machine a refused
  // batch's row-by-row replay (savepoints in one transaction) can take longer than the default 5 s,
  // which would turn it into a retried "unavailable" failure.
  l3 = createPrismaStore({ prisma: db.prisma, timeout: 60_000 })
})
afterEach(async () => {
  for (const c of open.splice(0)) await c.close()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await client.close()
  await db?.drop()
})

function cache(options: TieredCacheOptions = {}): TieredCache & { l1: MemCache } {
  const l1 = createMemCache()
  const c = createTieredCache({ l1, l2, l3, ...options })
  open.push(c)
  return Object.assign(c, { l1 })
}

/** Makes the record refuse writes of `key` (other than the value `allow`) with a check constraint. */
async function refuse(namespace: string, key: string, allow = ''): Promise<void> {
  const lit = (s: string) => `'${s.replaceAll("'", "''")}'`
  await db.prisma.$executeRawUnsafe(
    `ALTER TABLE ac_cache_entries ADD CONSTRAINT refuse_${uid()} CHECK (namespace <> ${lit(namespace)} OR key <> ${lit(key)} OR value = ${lit(JSON.stringify(allow))})`,
  )
}

let n = 0
const ns = (): string => `ns${++n}_${uid().slice(0, 6)}`

/** Two instances on one bus (and `options`, such as a shared queue), each with a write-behind namespace. */
function twoInstances(options: TieredCacheOptions = {}) {
  const hub = createLocalBusHub()
  const name = ns()
  const a = cache({ ...options, bus: hub.connect(), writeBehind: { autoStart: false } })
  const b = cache({ ...options, bus: hub.connect(), writeBehind: { autoStart: false } })
  const policy = { strategy: 'write_behind' as const }
  return {
    a,
    b,
    name,
    ta: a.namespace<number>(name, policy),
    tb: b.namespace<number>(name, policy),
  }
}

describe('write_through', () => {
  it('writes the record, then every cache tier, with the record version', async () => {
    const c = cache()
    const name = ns()
    const t = c.namespace<{ hp: number }>(name)
    expect(await t.set('a', { hp: 1 })).toEqual({ applied: true, version: 1 })
    expect(await t.set('a', { hp: 2 })).toEqual({ applied: true, version: 2 })
    const inL3 = await l3.namespace(name).get('a')
    const inL2 = await l2.namespace(name).get('a')
    const inL1 = c.l1.namespace(name).getSync('a')
    expect([inL3?.version, inL2?.version, inL1?.version]).toEqual([2, 2, 2])
    expect(inL3?.expiresAt).toBeNull() // the record keeps it
    expect(inL2?.expiresAt).not.toBeNull() // caches expire
    expect(await t.get('a')).toEqual({ hp: 2 })
  })

  it('compare-and-set against the record', async () => {
    const t = cache().namespace<number>(ns())
    await t.set('k', 1)
    await expect(t.set('k', 2, { expectedVersion: 7 })).rejects.toBeInstanceOf(ConflictError)
    expect(await t.set('k', 2, { expectedVersion: 1 })).toEqual({ applied: true, version: 2 })
    expect(await t.get('k')).toBe(2)
  })

  it('an older explicit version changes nothing anywhere', async () => {
    const t = cache().namespace<number>(ns())
    await t.set('k', 5, { version: 5 })
    expect(await t.set('k', 3, { version: 3 })).toEqual({ applied: false, version: 5 })
    expect(await t.get('k')).toBe(5)
  })

  it('when the record refuses, the caches are not ahead of it and the caller gets the error', async () => {
    const c = cache()
    const name = ns()
    const t = c.namespace<unknown>(name)
    await t.set('k', 'old')
    await refuse(name, 'k', 'old')
    await expect(t.set('k', 'new')).rejects.toThrow(/refuse_/)
    expect(await t.get('k')).toBe('old')
    expect((await l2.namespace(name).get('k'))?.value).toBe('old')
  })

  it('reads fall through to the record after caches lose the key, and backfill them', async () => {
    const c = cache()
    const name = ns()
    const t = c.namespace<string>(name)
    await t.set('k', 'v')
    await c.l1.namespace(name).delete('k')
    await l2.namespace(name).delete('k')
    expect(await t.get('k')).toBe('v')
    expect(t.stats().recordHits).toBe(1)
    expect((await l2.namespace(name).get('k'))?.version).toBe(1)
    expect(c.l1.namespace(name).getSync('k')?.version).toBe(1)
  })

  it('an L2 hit backfills L1 with the remaining TTL, never longer', async () => {
    const c = cache()
    const name = ns()
    const t = c.namespace<string>(name, { record: false })
    await l2.namespace(name).set('k', 'from-l2', { ttl: 60_000, version: 4 })
    const l2Entry = await l2.namespace(name).get('k')
    expect(await t.get('k')).toBe('from-l2')
    const l1Entry = c.l1.namespace(name).getSync('k')
    expect(l1Entry?.version).toBe(4)
    expect(l1Entry?.expiresAt).toBe(l2Entry?.expiresAt)
    expect(t.stats().lowerHits).toBe(1)
  })

  it('delete removes the key from the record and every cache', async () => {
    const c = cache()
    const name = ns()
    const t = c.namespace<string>(name)
    await t.set('k', 'v')
    expect(await t.delete('k')).toBe(true)
    expect(await t.get('k')).toBeUndefined()
    expect(await l3.namespace(name).get('k')).toBeUndefined()
    expect(await l2.namespace(name).get('k')).toBeUndefined()
    expect(await t.delete('k')).toBe(false)
  })
})

describe('write_around', () => {
  it('writes the record and invalidates the caches; the next read loads the record', async () => {
    const c = cache()
    const name = ns()
    const t = c.namespace<string>(name, { strategy: 'write_around' })
    await t.set('k', 'v1')
    expect(await l2.namespace(name).get('k')).toBeUndefined()
    expect(c.l1.namespace(name).getSync('k')).toBeUndefined()
    expect(await t.get('k')).toBe('v1') // from the record, now cached
    expect((await l2.namespace(name).get('k'))?.value).toBe('v1')
    await t.set('k', 'v2')
    expect(c.l1.namespace(name).getSync('k')).toBeUndefined()
    expect(await t.get('k')).toBe('v2')
  })
})

describe('write_behind', () => {
  it('acknowledges once queued, serves from the caches, and persists on flush', async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<{ n: number }>(name, { strategy: 'write_behind' })
    const v1 = (await t.set('k', { n: 1 })).version
    for (let i = 2; i <= 5; i++) expect((await t.set('k', { n: i })).version).toBe(v1 + i - 1)
    expect(await l3.namespace(name).get('k')).toBeUndefined()
    expect(await t.get('k')).toEqual({ n: 5 })
    expect(await c.flush()).toBe(5)
    const row = await l3.namespace(name).get('k')
    expect(row?.value).toEqual({ n: 5 })
    expect(row?.version).toBe(v1 + 4)
    expect(c.stats().writeBehind?.coalesced).toBe(4)
  })

  it("continues the record's versions for a key with no version head", async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    await l3.namespace(name).set('k', 'old', { version: 41 })
    const t = c.namespace<string>(name, { strategy: 'write_behind' })
    const first = await t.set('k', 'new')
    expect(first.version).toBe(42)
    expect((await t.set('k', 'newer')).version).toBe(first.version + 1)
    await c.flush()
    const row = await l3.namespace(name).get('k')
    expect(row?.value).toBe('newer')
    expect(row?.version).toBe(first.version + 1)
    // another instance claims from the same head in L2
    const d = cache({ writeBehind: { autoStart: false } }).namespace<string>(name, {
      strategy: 'write_behind',
    })
    await expect(d.set('k', 'x', { expectedVersion: 41 })).rejects.toBeInstanceOf(ConflictError)
    expect((await d.set('k', 'x', { expectedVersion: first.version + 1 })).version).toBe(
      first.version + 2,
    )
  })

  it('the background flusher persists batches by itself', async () => {
    const c = cache({ writeBehind: { interval: 10, linger: 0 } })
    const name = ns()
    const t = c.namespace<number>(name, { strategy: 'write_behind' })
    await Promise.all(Array.from({ length: 200 }, (_, i) => t.set(`k${i}`, i)))
    let count = 0
    await eventually(
      async () => {
        const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
        count = (await l3.namespace(name).getMany(keys)).filter((r) => r !== undefined).length
        return count === 200
      },
      60_000,
      'the flusher to persist all 200 writes',
    )
    expect(count).toBe(200)
  })

  it('flush keeps a second batch on the wire while the first is written, and persists all', async () => {
    // the record's setMany, counted: how many run at once
    let running = 0
    let most = 0
    const record = new Proxy(l3, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target)
        if (typeof v !== 'function') return v
        if (prop !== 'namespace') return v.bind(target)
        return (...args: Parameters<PrismaTier['namespace']>) => {
          const store = target.namespace(...args)
          const setMany = store.setMany.bind(store)
          store.setMany = async (items) => {
            most = Math.max(most, ++running)
            try {
              return await setMany(items)
            } finally {
              running--
            }
          }
          return store
        }
      },
    })
    const c = createTieredCache({
      l1: createMemCache(),
      l2,
      l3: record,
      writeBehind: { batchSize: 20, autoStart: false },
    })
    open.push(c)
    const name = ns()
    const t = c.namespace<number>(name, { strategy: 'write_behind' })
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
    await Promise.all(keys.map((k, i) => t.set(k, i)))
    expect(await c.flush()).toBe(200)
    expect(most).toBe(2)
    const rows = await l3.namespace<number>(name).getMany(keys)
    expect(rows.map((r) => r?.value)).toEqual(keys.map((_, i) => i))
  })

  it('a full queue rejects the write with E_QUEUE_FULL and keeps nothing of it', async () => {
    const queue = createMemoryWriteQueue({ capacity: 3 })
    const c = cache({ queue, writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<number>(name, { strategy: 'write_behind' })
    for (let i = 0; i < 3; i++) await t.set(`k${i}`, i)
    const err = await t.set('k3', 3).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QueueFullError)
    expect((err as QueueFullError).code).toBe('E_QUEUE_FULL')
    expect(await t.get('k3')).toBeUndefined()
    expect(await l2.namespace(name).get('k3')).toBeUndefined()
    await c.flush()
    expect((await t.set('k3', 3)).applied).toBe(true)
  })

  it('a poison row goes to the dead letters and the rest persist', async () => {
    const deadLetters = createMemoryDeadLetters()
    const c = cache({ deadLetters, writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<string>(name, { strategy: 'write_behind' })
    await refuse(name, 'k17')
    for (let i = 0; i < 50; i++) await t.set(`k${i}`, `v${i}`)
    expect(await c.flush()).toBe(50)
    const rows = await l3.namespace(name).getMany(Array.from({ length: 50 }, (_, i) => `k${i}`))
    expect(rows.filter((r) => r !== undefined)).toHaveLength(49)
    expect(rows[17]).toBeUndefined()
    const letters = await deadLetters.list({ namespace: name })
    expect(letters.map((l) => l.key)).toEqual(['k17'])
    expect(letters[0]?.write.value).toBe('v17')
    expect(letters[0]?.error).toMatch(/refuse_/)
    expect(c.stats().writeBehind?.deadLettered).toBe(1)
    // the caches no longer serve the value the record refused; the others stay cached
    expect(await t.get('k17')).toBeUndefined()
    expect(await l2.namespace(name).get('k17')).toBeUndefined()
    expect(await l2.namespace(name).get('k16')).toMatchObject({ value: 'v16' })
  }, 120_000)

  it('delete is queued (durable) and applied to the record at once when it is reachable', async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<string>(name, { strategy: 'write_behind' })
    await t.set('k', 'v')
    await t.set('k', 'v2')
    expect(await t.delete('k')).toBe(true)
    expect(await t.get('k')).toBeUndefined()
    expect(await l3.namespace(name).get('k')).toBeUndefined()
    // the queued set must not bring the row back: the newer queued delete wins the batch
    expect(await c.flush()).toBe(3)
    expect(await l3.namespace(name).get('k')).toBeUndefined()
    expect(await t.get('k')).toBeUndefined()
  })

  it('a delete leaves a tombstone: an older queued set flushed after it does not bring the row back', async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<string>(name, { strategy: 'write_behind' })
    const set = await t.set('k', 'v1')
    expect(await t.delete('k')).toBe(true)
    // the set's delivery comes back after the delete was persisted (a consumer died holding it)
    const record = l3.namespace<string>(name)
    expect((await record.setMany([{ key: 'k', value: 'v1', version: set.version }]))[0]).toEqual({
      applied: false,
      version: expect.any(Number),
    })
    await c.flush()
    expect(await record.get('k')).toBeUndefined()
    expect(await t.get('k')).toBeUndefined()
    // a later write applies, with a version above the tombstone
    const again = await t.set('k', 'v2')
    await c.flush()
    expect((await record.get('k'))?.value).toBe('v2')
    expect((await record.get('k'))?.version).toBe(again.version)
  })

  it('a refill from the record never hides, or takes a version below, an unflushed write', async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<string>(name, { strategy: 'write_behind' })
    await t.set('k', 'a0')
    await c.flush()
    await c.invalidate({ namespace: name, keys: ['k'] })
    await clockPast(Date.now()) // the write below is dated after the invalidation
    const a = await t.set('k', 'a')
    await c.invalidate({ namespace: name, keys: ['k'] })
    // the caches lost 'a' and the record still has 'a0': this instance serves its own write
    expect(await t.get('k')).toBe('a')
    expect(await t.getMany(['k'])).toEqual(['a'])
    const b = await t.set('k', 'b')
    expect(b.version).toBeGreaterThan(a.version)
    await c.flush()
    expect((await l3.namespace(name).get('k'))?.value).toBe('b')
    expect(await t.get('k')).toBe('b')
  })

  it('concurrent compare-and-set writes of a key the caches do not hold: one wins', async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<string>(name, { strategy: 'write_behind' })
    const results = await Promise.allSettled([
      t.set('k', 'x', { expectedVersion: 0 }),
      t.set('k', 'y', { expectedVersion: 0 }),
      t.set('k', 'z', { expectedVersion: 0 }),
    ])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const lost = results.filter((r) => r.status === 'rejected')
    expect(lost.every((r) => (r as PromiseRejectedResult).reason instanceof ConflictError)).toBe(
      true,
    )
    const won = (
      results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ version: number }>
    ).value
    await c.flush()
    expect((await l3.namespace(name).get('k'))?.version).toBe(won.version)
  })

  it('with a shared queue, a write another instance flushed and superseded is not served again', async () => {
    const queue = createMemoryWriteQueue()
    const a = cache({ queue, writeBehind: { autoStart: false } })
    const b = cache({ queue, writeBehind: { autoStart: false } })
    const name = ns()
    const ta = a.namespace<number>(name, { strategy: 'write_behind' })
    const tb = b.namespace<number>(name, { strategy: 'write_behind' })
    await ta.set('k', 1)
    await b.flush() // B persists A's write
    await tb.set('k', 2)
    await b.flush()
    await a.invalidate({ namespace: name, keys: ['k'] })
    expect(await ta.get('k')).toBe(2)
    expect(await l2.namespace(name).get('k')).toMatchObject({ value: 2 })
    const c = cache({ writeBehind: { autoStart: false } }).namespace<number>(name, {
      strategy: 'write_behind',
    })
    expect(await c.get('k')).toBe(2)
  })

  it('create-if-absent (expectedVersion 0) works right after a delete, before the flush', async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<number>(name, { strategy: 'write_behind' })
    await t.set('k', 1)
    await c.flush()
    await t.delete('k')
    expect(await t.get('k')).toBeUndefined()
    const r = await t.set('k', 5, { expectedVersion: 0 })
    expect(r.applied).toBe(true)
    await expect(t.set('k', 6, { expectedVersion: 0 })).rejects.toBeInstanceOf(ConflictError)
    await c.flush()
    expect(await l3.namespace(name).get('k')).toMatchObject({ value: 5, version: r.version })
  })

  it('a fill whose reply arrives after a newer write does not take that write back', async () => {
    // L2 holds back its reply to the load's compare-and-set fill until the test lets it go, and a
    // write lands in between
    let delayFill = true
    const landed = deferred<void>()
    const reply = deferred<void>()
    const slowL2 = interceptTier(createRedisStore({ client, prefix }), (method, call, args) => {
      const opts = args[2] as { expectedVersion?: number } | undefined
      if (method !== 'set' || !delayFill || opts?.expectedVersion === undefined) return call()
      delayFill = false
      return (async () => {
        const r = await call()
        landed.resolve()
        await reply.promise
        return r
      })()
    })
    const c = createTieredCache({ l1: createMemCache(), l2: slowL2 })
    open.push(c)
    const name = ns()
    const t = c.namespace<string>(name, { record: false, loader: () => 'loaded' })
    const read = t.get('k')
    await landed.promise // the fill is in L2, its reply is held back
    expect((await t.set('k', 'written')).applied).toBe(true)
    reply.resolve()
    await read
    expect(await l2.namespace(name).get('k')).toMatchObject({ value: 'written' })
    expect(await t.get('k')).toBe('written')
  })

  it("close persists another instance's queued writes of a namespace it knows but never used", async () => {
    const queue = createMemoryWriteQueue()
    const deadLetters = createMemoryDeadLetters()
    const name = ns()
    const policy = { [name]: { strategy: 'write_behind' as const } }
    const a = cache({ queue, deadLetters, namespaces: policy, writeBehind: { autoStart: false } })
    const b = createTieredCache({
      l1: createMemCache(),
      l2,
      l3,
      queue,
      deadLetters,
      namespaces: policy,
      writeBehind: { autoStart: false, maxAttempts: 1 },
    })
    await a.namespace<number>(name).set('k', 7)
    await b.close()
    expect(await l3.namespace(name).get('k')).toMatchObject({ value: 7 })
    expect(await deadLetters.list({ namespace: name })).toEqual([])
  })

  it('a flush racing close does not start the flusher again', async () => {
    const queue = createMemoryWriteQueue()
    // A's view of the shared queue records every call A makes once both have returned
    let watching = false
    const callsByA: string[] = []
    const queueOfA = intercept(queue, (method, call) => {
      if (watching) callsByA.push(method)
      return call()
    })
    const name = ns()
    const namespaces = { [name]: { strategy: 'write_behind' as const } }
    const a = createTieredCache({
      l1: createMemCache(),
      l2,
      l3,
      queue: queueOfA,
      namespaces,
      writeBehind: { interval: 5 },
    })
    const b = cache({ queue, namespaces, writeBehind: { autoStart: false } })
    a.namespace(name)
    const flushing = a.flush()
    await a.close()
    await flushing
    watching = true
    await b.namespace<number>(name).set('k', 1)
    // A running flusher of A calls the queue at least every `interval` (5 ms) or `linger` (10 ms):
    // its timers were set before this one and end sooner, and timers fire in the order they end,
    // so by the time this one fires such a flusher has called the queue, however slow the machine.
    await new Promise((r) => setTimeout(r, 100))
    expect(callsByA).toEqual([])
    // only a running flusher of A could have claimed or persisted it
    expect(await l3.namespace(name).get('k')).toBeUndefined()
    expect((await queue.stats()).ready).toBe(1)
  })

  it("another instance's delete of a key ends this instance's unflushed write of it", async () => {
    const queue = createMemoryWriteQueue()
    const { b, ta, tb, name } = twoInstances({ queue })
    await ta.set('k', 1)
    await b.flush() // B persists A's write: A is never told
    await tb.delete('k')
    expect(await ta.get('k')).toBeUndefined()
    expect(await ta.has('k')).toBe(false)
    expect(await tb.get('k')).toBeUndefined()
    expect(await l2.namespace(name).get('k')).toBeUndefined()
  })

  it('a queued write a tag invalidation hit is invalidated again once flushed', async () => {
    const { a, tb, ta } = twoInstances()
    await ta.set('k', 1, { tags: ['t'] })
    await a.flush()
    await ta.set('k', 2, { tags: ['t'] })
    await a.invalidate({ tags: ['t'] })
    await nextTurn() // the local hub delivers a microtask later: B has the message
    expect(await tb.get('k')).toBe(1) // the record's row, until A flushes
    await a.flush()
    expect(await tb.get('k')).toBe(2)
  })

  it('flush and close return when the queue holds only writes of namespaces this instance lacks', async () => {
    const queue = createMemoryWriteQueue()
    const name = ns()
    const a = cache({ queue, writeBehind: { autoStart: false } })
    const b = createTieredCache({
      l1: createMemCache(),
      l2,
      l3,
      queue,
      writeBehind: { autoStart: false },
    })
    await a.namespace<number>(name, { strategy: 'write_behind' }).set('k', 1)
    expect(await b.flush({ timeout: 2_000 })).toBe(0)
    await b.close({ timeout: 2_000 })
    expect(await a.flush()).toBe(1)
    expect(await l3.namespace(name).get('k')).toMatchObject({ value: 1 })
  })

  it("a flush persists this instance's writes queued behind others' it cannot persist", async () => {
    const queue = createMemoryWriteQueue()
    const name = ns()
    const other = ns()
    const a = cache({ queue, writeBehind: { autoStart: false } })
    const b = cache({ queue, writeBehind: { autoStart: false, batchSize: 2 } })
    const ta = a.namespace<number>(other, { strategy: 'write_behind' })
    await ta.set('x1', 1)
    await ta.set('x2', 2)
    await b.namespace<number>(name, { strategy: 'write_behind' }).set('k', 3)
    expect(await b.flush({ timeout: 2_000 })).toBe(1)
    expect(await l3.namespace(name).get('k')).toMatchObject({ value: 3 })
    expect(await a.flush()).toBe(2)
  })

  it("an older write flushed by one instance does not hide another instance's newer one", async () => {
    // each instance with a queue of its own: A's flush persists only A's (older) write
    const { a, b, ta, tb, name } = twoInstances()
    await ta.set('k', 1)
    await tb.set('k', 2)
    await a.flush()
    expect(await tb.get('k')).toBe(2)
    expect(await ta.get('k')).toBe(2)
    await b.flush()
    expect((await l3.namespace(name).get('k'))?.value).toBe(2)
  })

  it('has and getTTL answer from an unflushed write while the record fails, as get does', async () => {
    const c = cache({ writeBehind: { autoStart: false } })
    const name = ns()
    let failing = false
    const record = intercept(l3.namespace<string>(name), (method, call) =>
      failing && (method === 'get' || method === 'getMany')
        ? Promise.reject(new Error('record down'))
        : call(),
    )
    const t = c.namespace<string>(name, { strategy: 'write_behind', record })
    await t.set('k', 'v')
    await c.invalidate({ namespace: name, keys: ['k'] })
    failing = true
    expect(await t.has('k')).toBe(true)
    expect(await t.getTTL('k')).toBe(Infinity) // not cached: the unflushed write, no expiry
    expect(await t.get('k')).toBe('v')
    failing = false
  })

  it('setTTL gives no new life to a copy older than an unflushed write', async () => {
    const name = ns()
    const a = cache({ writeBehind: { autoStart: false } })
    const b = cache({ writeBehind: { autoStart: false } })
    const ta = a.namespace<string>(name, { strategy: 'write_behind' })
    const tb = b.namespace<string>(name, { strategy: 'write_behind' })
    await ta.set('k', 'one')
    await a.flush()
    await ta.set('k', 'two')
    await a.invalidate({ namespace: name, keys: ['k'] })
    expect(await tb.get('k')).toBe('one') // B copies the record's row into L2 (no bus here)
    expect(await ta.setTTL('k', 60_000)).toBe(false)
    expect(await l2.namespace(name).get('k')).toBeUndefined()
    expect(await ta.get('k')).toBe('two')
  })

  it('close persists what is queued', async () => {
    const c = createTieredCache({ l1: createMemCache(), l2, l3, writeBehind: { autoStart: false } })
    const name = ns()
    const t = c.namespace<number>(name, { strategy: 'write_behind' })
    for (let i = 0; i < 20; i++) await t.set(`k${i}`, i)
    await c.close()
    const rows = await l3.namespace(name).getMany(Array.from({ length: 20 }, (_, i) => `k${i}`))
    expect(rows.every((r) => r !== undefined)).toBe(true)
    await expect(t.set('x', 1)).rejects.toMatchObject({ code: 'E_CLOSED' })
  })
})
