/**
 * R9: write-behind against a model. Two instances (each with its own L1) share Redis (L2 and a
 * Redis Streams write queue) and PostgreSQL (the record). Random sequences of sets and deletes of
 * a few keys run on either instance, with random flush points: one instance flushes, both flush
 * at once (their batches interleave), a consumer claims a batch and dies (the batch comes back
 * after the claim timeout, behind newer writes), a consumer persists a batch and dies before the
 * ack (the batch is written again later), an instance restarts. After everything is drained, each
 * key in PostgreSQL holds its last acknowledged write (a delete included), and a fresh instance
 * reads the same.
 *
 * The clock is shared and moves at least 1 ms per command: the documented assumption of clock
 * versions (instances' clocks agree better than the time between two writes of a key).
 */
import type { QueuedWrite } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, type PrismaTier } from '@actor-cache/prisma-store'
import {
  type AnyRedisClient,
  createRedisStore,
  createRedisWriteQueue,
  type RedisTier,
  type RedisWriteQueue,
} from '@actor-cache/redis'
import { assertReplayable, longTimeout } from '@actor-cache/test-utils/property'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache } from '../src/index.js'
import { dropPrefix, postgres, redis, type TestDb, uid } from './helpers.js'

const KEYS = ['k1', 'k2', 'k3'] as const
const CLAIM_TIMEOUT = 100
const NS = 'actors'

type Op =
  | { kind: 'set'; on: 0 | 1; key: string; n: number }
  | { kind: 'delete'; on: 0 | 1; key: string }
  | { kind: 'flush'; on: 0 | 1 }
  | { kind: 'flushBoth' }
  | { kind: 'abandon'; max: number }
  | { kind: 'persistNoAck'; max: number }
  | { kind: 'restart'; on: 0 | 1 }
  | { kind: 'idle' }

const on = fc.constantFrom<0 | 1>(0, 1)
const key = fc.constantFrom(...KEYS)
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('set' as const), on, key, n: fc.nat(99) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), on, key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flush' as const), on }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flushBoth' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('abandon' as const),
      max: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('persistNoAck' as const),
      max: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), on }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('idle' as const) }) },
)

let db: TestDb
let client: AnyRedisClient
let l3: PrismaTier
const base = `acwb${uid()}`
let run = 0

beforeAll(async () => {
  db = await postgres()
  client = await redis()
  l3 = createPrismaStore({ prisma: db.prisma })
})
afterAll(async () => {
  await client?.close()
  await db?.drop()
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface World {
  prefix: string
  namespace: string
  l2: RedisTier
  clock: { now: () => number; tick: () => void }
  queues: RedisWriteQueue<QueuedWrite>[]
  caches: TieredCache[]
  instances: [TieredCache, TieredCache]
  batchSize: number
  /** Streams the queue spreads writes over (1: one stream). */
  shards: number
}

function queue(
  w: Pick<World, 'prefix' | 'queues' | 'shards'>,
  consumer: string,
): RedisWriteQueue<QueuedWrite> {
  const q = createRedisWriteQueue<QueuedWrite>({
    client,
    prefix: w.prefix,
    name: 'wb',
    consumer,
    claimTimeout: CLAIM_TIMEOUT,
    shards: w.shards,
  })
  w.queues.push(q)
  return q
}

function instance(w: World, name: string): TieredCache {
  const c = createTieredCache({
    l1: createMemCache(),
    l2: w.l2,
    l3,
    queue: queue(w, `${name}-${uid()}`),
    writeBehind: { autoStart: false, batchSize: w.batchSize, linger: 0, retryBase: 5 },
    namespaces: { [w.namespace]: { strategy: 'write_behind', ttl: 3_600_000 } },
    now: w.clock.now,
  })
  w.caches.push(c)
  return c
}

/** A consumer that claims up to `max` writes and dies; with `persist`, after writing them. */
async function dyingConsumer(w: World, max: number, persist: boolean): Promise<void> {
  const q = queue(w, `ghost-${uid()}`)
  const batch = await q.claim(max)
  if (!persist) return
  const record = l3.namespace(w.namespace)
  for (const d of batch) {
    const item = d.item
    if (item.op === 'set') {
      await record.setMany([
        { key: item.key, value: item.value, version: item.version, expiresAt: item.expiresAt },
      ])
    } else await record.deleteVersions([{ key: item.key, version: item.version }])
  }
}

async function drainAll(w: World): Promise<void> {
  const q = queue(w, `drain-${uid()}`)
  const c = instance(w, 'drain')
  for (let i = 0; i < 100; i++) {
    await c.flush()
    const s = await q.stats()
    if (s.ready === 0 && s.inFlight === 0) return
    await sleep(CLAIM_TIMEOUT + 20) // abandoned claims come back after the claim timeout
  }
  throw new Error('the write-behind queue did not drain')
}

describe('R9: write-behind with two instances sharing a Redis Streams queue (1 or 3 streams)', () => {
  it(
    'after draining, PostgreSQL holds the last acknowledged write of every key',
    async () => {
      const stats = { runs: 0, commands: 0, abandoned: 0, replayed: 0, restarts: 0, sharded: 0 }
      await assertReplayable(
        fc.asyncProperty(
          fc.array(op, { minLength: 1, maxLength: 25 }),
          fc.integer({ min: 1, max: 4 }),
          fc.constantFrom(1, 3),
          async (ops, batchSize, shards) => {
            const prefix = `${base}-${++run}`
            let t = Date.now()
            const w: World = {
              prefix,
              namespace: `${NS}${run}`,
              l2: createRedisStore({ client, prefix }),
              clock: { now: () => t, tick: () => (t = Math.max(t + 1, Date.now())) },
              queues: [],
              caches: [],
              instances: undefined as unknown as [TieredCache, TieredCache],
              batchSize,
              shards,
            }
            w.instances = [instance(w, 'a'), instance(w, 'b')]
            const model = new Map<string, number | undefined>()
            if (shards > 1) stats.sharded++
            try {
              for (const o of ops) {
                w.clock.tick()
                const ns = (i: 0 | 1) => w.instances[i].namespace<{ n: number }>(w.namespace)
                switch (o.kind) {
                  case 'set':
                    await ns(o.on).set(o.key, { n: o.n })
                    model.set(o.key, o.n)
                    break
                  case 'delete':
                    await ns(o.on).delete(o.key)
                    model.set(o.key, undefined)
                    break
                  case 'flush':
                    await w.instances[o.on].flush()
                    break
                  case 'flushBoth':
                    await Promise.all([w.instances[0].flush(), w.instances[1].flush()])
                    break
                  case 'abandon':
                    await dyingConsumer(w, o.max, false)
                    stats.abandoned++
                    break
                  case 'persistNoAck':
                    await dyingConsumer(w, o.max, true)
                    stats.replayed++
                    break
                  case 'restart':
                    // the old instance is gone without a flush: its L1 and counters with it
                    w.instances[o.on] = instance(w, o.on === 0 ? 'a' : 'b')
                    stats.restarts++
                    break
                  case 'idle':
                    await sleep(CLAIM_TIMEOUT + 20)
                    break
                }
                stats.commands++
              }
              await drainAll(w)
              const record = l3.namespace<{ n: number }>(w.namespace)
              const rows = await record.getMany([...KEYS])
              const fresh = instance(w, 'reader').namespace<{ n: number }>(w.namespace)
              for (let i = 0; i < KEYS.length; i++) {
                const k = KEYS[i] as string
                const want = model.get(k)
                const got = rows[i]?.value.n
                if (got !== want) {
                  throw new Error(
                    `${k}: PostgreSQL holds ${JSON.stringify(got)}, the last acknowledged write was ${want === undefined ? 'a delete (or none)' : want}`,
                  )
                }
                expect((await fresh.get(k))?.n).toBe(want)
              }
              stats.runs++
            } finally {
              for (const c of w.caches) await c.close({ timeout: 1000 }).catch(() => undefined)
              for (const q of w.queues) await q.close().catch(() => undefined)
              await dropPrefix(client, prefix)
            }
          },
        ),
        150,
      )
      console.log(
        `R9: ${stats.runs} runs (${stats.sharded} over a queue of 3 streams), ${stats.commands} commands (${stats.abandoned} abandoned claims, ${stats.replayed} persisted-but-unacked batches, ${stats.restarts} restarts): 0 acknowledged writes lost`,
      )
    },
    longTimeout(300_000),
  )
})
