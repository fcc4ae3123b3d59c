import { RateLimitedError } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createTieredCache } from '@actor-cache/strategies'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRateLimiter, guardCache, type RateLimiter } from '../src/index.js'
import { privateRedis, type Redis, type RedisServer, redis } from './helpers.js'

/**
 * Redis answers within this while it is up, however loaded the machine: a slower answer would send
 * the call to the in-memory limiter and split a principal's count between the two.
 */
const SLOW_MACHINE = 10_000

const policy = { roles: { player: [{ namespaces: '*', operations: '*' as const }] } }

async function setup(limiter: RateLimiter) {
  const l1 = createMemCache()
  const cache = createTieredCache({ l1 })
  const guarded = guardCache(cache, { policy, rateLimiter: limiter })
  const admin = guardCache(cache, { policy })
  for (const ns of ['inventory', 'chat']) {
    await admin
      .as({ id: 'seed', roles: ['player'] })
      .namespace(ns)
      .set('k', 1)
  }
  return {
    guarded,
    async close() {
      await cache.close()
      await l1.close()
    },
  }
}

/** `n` concurrent L1-hit reads by `id`; counts the successes and the refusals. */
async function burst(
  g: Awaited<ReturnType<typeof setup>>['guarded'],
  id: string,
  n: number,
  ns = 'inventory',
) {
  const view = g.as({ id, roles: ['player'] }).namespace(ns)
  const results = await Promise.allSettled(Array.from({ length: n }, () => view.get('k')))
  const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown)
  for (const e of refused) {
    expect(e).toBeInstanceOf(RateLimitedError)
    expect((e as RateLimitedError).code).toBe('E_RATE_LIMITED')
    expect((e as RateLimitedError).retryAfterMs).toBeGreaterThan(0)
    expect((e as RateLimitedError).principal).toBe(id)
  }
  return { ok: results.length - refused.length, refused: refused.length }
}

describe('rate limits per principal and namespace', () => {
  let server: RedisServer
  let client: Redis
  beforeAll(async () => {
    server = await privateRedis()
    client = await redis(server.url)
  })
  afterAll(async () => {
    await client?.close().catch(() => {})
    await server?.kill()
  })

  it('bursts from several clients: each principal gets its budget, on each namespace', async () => {
    const limiter = createRateLimiter({
      points: 5,
      duration: 60,
      redis: client,
      keyPrefix: 'rl-burst',
      timeout: SLOW_MACHINE,
      namespaces: { chat: { points: 2, duration: 60 } },
    })
    const { guarded, close } = await setup(limiter)
    const players = ['p1', 'p2', 'p3', 'p4']
    const results = await Promise.all(players.map((p) => burst(guarded, p, 12)))
    expect(results).toEqual(players.map(() => ({ ok: 5, refused: 7 })))
    // another namespace has its own budget
    expect(await burst(guarded, 'p1', 6, 'chat')).toEqual({ ok: 2, refused: 4 })
    // the counters are in Redis
    expect((await client.keys('rl-burst*')).length).toBeGreaterThanOrEqual(5)
    await close()
  })

  it('two instances share the budget through Redis', async () => {
    const options = {
      points: 5,
      duration: 60,
      redis: client,
      keyPrefix: 'rl-shared',
      timeout: SLOW_MACHINE,
    }
    const a = await setup(createRateLimiter(options))
    const b = await setup(createRateLimiter(options))
    const [ra, rb] = await Promise.all([burst(a.guarded, 'p', 6), burst(b.guarded, 'p', 6)])
    expect(ra.ok + rb.ok).toBe(5)
    await Promise.all([a.close(), b.close()])
  })

  it('while Redis is down, the in-memory limiter keeps every principal limited', async () => {
    const limiter = createRateLimiter({
      points: 3,
      duration: 60,
      redis: client,
      keyPrefix: 'rl-down',
      timeout: SLOW_MACHINE,
    })
    const { guarded, close } = await setup(limiter)
    expect(await burst(guarded, 'before', 5)).toEqual({ ok: 3, refused: 2 })
    await server.kill()
    // once the client knows Redis is gone, every call goes to the in-memory limiter at once
    const deadline = Date.now() + 20_000
    while (client.isReady && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(client.isReady).toBe(false)
    for (const p of ['q1', 'q2', 'q3']) {
      expect(await burst(guarded, p, 8)).toEqual({ ok: 3, refused: 5 })
    }
    // and bursts one after the other stay limited too
    expect(await burst(guarded, 'q1', 4)).toEqual({ ok: 0, refused: 4 })
    await close()
  })

  it('refuses bad budgets with typed errors', () => {
    for (const bad of [
      { points: 0, duration: 1 },
      { points: 1.5, duration: 1 },
      { points: 1, duration: -1 },
      { points: 1, duration: 1, redis: 'localhost' },
      { points: 1, duration: 1, namespaces: { chat: { points: 'x', duration: 1 } } },
      { points: 1, duration: 1, timeout: 0 },
    ]) {
      expect(() => createRateLimiter(bad as never)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION' }),
      )
    }
  })
})
