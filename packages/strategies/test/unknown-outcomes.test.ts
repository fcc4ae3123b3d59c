/**
 * A write whose outcome is unknown. Redis is stalled (SIGSTOP, or CLIENT PAUSE ... WRITE) while
 * instance A writes a key that A and B hold in L1: A's call times out, and Redis runs the command
 * when it resumes. Once Redis answers again, A, B, a fresh instance and L2 itself must agree, and
 * no value nobody acknowledged may stay readable.
 */
import { createMemoryWriteQueue, type InvalidationBus } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisBus, createRedisStore } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createTieredCache,
  type NamespacePolicy,
  type TieredCache,
  type TieredNamespace,
} from '../src/index.js'
import {
  type Around,
  eventually,
  interceptTier,
  postgres,
  redis,
  type TestDb,
  uid,
} from './helpers.js'
import { privateRedis, type RedisServer } from './servers.js'

let server: RedisServer
let db: TestDb
const open: (() => Promise<void>)[] = []

beforeAll(async () => {
  server = await privateRedis()
  db = await postgres()
})
afterEach(async () => {
  server.resume()
  const admin = await redis(server.url)
  await (admin as unknown as { sendCommand(a: string[]): Promise<unknown> })
    .sendCommand(['CLIENT', 'UNPAUSE'])
    .finally(() => admin.close())
  for (const close of open.splice(0).reverse()) await close().catch(() => undefined)
})
afterAll(async () => {
  await server?.kill()
  await db?.drop()
})

interface Instance {
  cache: TieredCache
  client: AnyRedisClient
}

/** One instance: its own L1, client and bus over the private Redis; short command timeouts. */
async function instance(
  prefix: string,
  policy: NamespacePolicy<unknown>,
  record: boolean,
  around?: Around,
): Promise<Instance> {
  const client = await redis(server.url)
  const options = {
    client,
    prefix,
    commandTimeout: 300,
    breaker: { threshold: 3, resetTimeout: 200 },
  }
  const bus: InvalidationBus = createRedisBus(options)
  const cache = createTieredCache({
    l1: createMemCache(),
    l2:
      around === undefined
        ? createRedisStore(options)
        : interceptTier(createRedisStore(options), around),
    ...(record ? { l3: createPrismaStore({ prisma: db.prisma }) } : {}),
    bus,
    queue: createMemoryWriteQueue(),
    namespaces: { [prefix]: policy },
  })
  open.push(async () => {
    await cache.close()
    await bus.close()
    await client.close()
  })
  return { cache, client }
}

/** What L2 holds under `key`, read with a fresh client. */
async function inL2(prefix: string, key: string): Promise<unknown> {
  const client = await redis(server.url)
  try {
    return (await createRedisStore({ client, prefix }).namespace(prefix).get(key))?.value
  } finally {
    await client.close()
  }
}

type Stall = 'SIGSTOP' | 'CLIENT PAUSE WRITE'

/**
 * Stalls Redis; resolves a function that ends the stall. The stall lasts until then (a backstop
 * of 60 s ends it if a test fails first), so the write's 300 ms timeout always fires inside it.
 */
async function stall(how: Stall): Promise<() => Promise<void>> {
  if (how === 'SIGSTOP') {
    server.pause()
    const backstop = setTimeout(() => server.resume(), 60_000)
    return async () => {
      clearTimeout(backstop)
      server.resume()
    }
  }
  const command = (args: string[]) => async (): Promise<void> => {
    const admin = await redis(server.url)
    try {
      await (admin as unknown as { sendCommand(a: string[]): Promise<unknown> }).sendCommand(args)
    } finally {
      await admin.close()
    }
  }
  await command(['CLIENT', 'PAUSE', '60000', 'WRITE'])()
  return command(['CLIENT', 'UNPAUSE'])
}

/**
 * An L2 whose next `set` (the write itself, after the reads that precede it) starts a stall of
 * Redis before it is sent: the command then waits in the stalled server and runs when it resumes.
 */
function stallOnNextSet(how: Stall): {
  around: Around
  arm(): void
  ended: Promise<() => Promise<void>>
} {
  let armed = false
  let started!: (end: () => Promise<void>) => void
  const ended = new Promise<() => Promise<void>>((r) => {
    started = r
  })
  const around: Around = (method, call) => {
    // a write-behind write claims its version and writes in one call (claimSet)
    if (!armed || (method !== 'set' && method !== 'claimSet')) return call()
    armed = false
    return stall(how).then((end) => {
      started(end)
      return call()
    })
  }
  return {
    around,
    ended,
    arm() {
      armed = true
    },
  }
}

/**
 * Writes v2 of `k` into a stall: the write times out and is reported, not acknowledged; then the
 * stall ends and Redis runs the write late.
 */
async function setThroughStall(
  ns: TieredNamespace<{ v: number }>,
  stalled: ReturnType<typeof stallOnNextSet>,
): Promise<void> {
  stalled.arm()
  const error = await ns.set('k', { v: 2 }).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect((error as { code?: string })?.code).toBe('E_TIER_UNAVAILABLE')
  await (await stalled.ended)()
}

describe.each<Stall>(['SIGSTOP', 'CLIENT PAUSE WRITE'])(
  'Redis stalled under a write (%s)',
  (how) => {
    it('write_through without a record: once Redis answers, A, B, a new instance and L2 agree', async () => {
      const prefix = `uo${uid()}`
      const policy = { record: false, ttl: 600_000 } as const
      const stalled = stallOnNextSet(how)
      const a = await instance(prefix, policy, false, stalled.around)
      const b = await instance(prefix, policy, false)
      const nsA = a.cache.namespace<{ v: number }>(prefix)
      const nsB = b.cache.namespace<{ v: number }>(prefix)
      await nsA.set('k', { v: 1 })
      expect(await nsB.get('k')).toEqual({ v: 1 }) // now in B's L1 too
      expect(await nsA.get('k')).toEqual({ v: 1 })

      await setThroughStall(nsA, stalled)

      // The stalled server runs the write when it resumes; from then on every reader must agree
      // with L2 (which the clean-up leaves empty, or holding a value every reader sees).
      const c = await instance(prefix, policy, false)
      await eventually(
        async () => {
          const seen = [
            await nsA.get('k').catch(() => 'error'),
            await nsB.get('k').catch(() => 'error'),
            await c.cache
              .namespace<{ v: number }>(prefix)
              .get('k')
              .catch(() => 'error'),
            await inL2(prefix, 'k').catch(() => 'error'),
          ].map((x) => JSON.stringify(x) ?? 'undefined')
          return seen.every((x) => x === seen[0] && x !== '"error"')
        },
        15_000,
        'A, B, a new instance and L2 to agree after the stall',
      )
    }, 60_000)

    it('write_behind: a claim that timed out leaves no unacknowledged value in L2', async () => {
      const prefix = `uo${uid()}`
      const policy = { strategy: 'write_behind', ttl: 600_000 } as const
      const stalled = stallOnNextSet(how)
      const a = await instance(prefix, policy, true, stalled.around)
      const b = await instance(prefix, policy, true)
      const nsA = a.cache.namespace<{ v: number }>(prefix)
      const nsB = b.cache.namespace<{ v: number }>(prefix)
      await nsA.set('k', { v: 1 })
      await a.cache.flush()
      expect(await nsB.get('k')).toEqual({ v: 1 })

      await setThroughStall(nsA, stalled)
      await a.cache.flush()

      // v2 was never acknowledged nor queued: nobody may read it once Redis answers again
      await eventually(
        async () => {
          const l2 = await inL2(prefix, 'k').catch(() => 'error')
          const seenA = await nsA.get('k').catch(() => 'error')
          const seenB = await nsB.get('k').catch(() => 'error')
          return (
            (l2 === undefined || JSON.stringify(l2) === '{"v":1}') &&
            JSON.stringify(seenA) === '{"v":1}' &&
            JSON.stringify(seenB) === '{"v":1}'
          )
        },
        15_000,
        'L2, A and B to hold only the acknowledged value',
      )
      const row = await createPrismaStore({ prisma: db.prisma }).namespace(prefix).get('k')
      expect(row?.value).toEqual({ v: 1 })
    }, 60_000)
  },
)
