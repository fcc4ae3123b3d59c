import { createLocalBusHub, createMemoryWriteQueue, type QueuedWrite } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisBus, createRedisStore } from '@actor-cache/redis'
import { createTieredCache } from '@actor-cache/strategies'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createHealthCheck, type HealthCheck } from '../src/index.js'
import { eventually, redis } from './helpers.js'
import { privateRedis, type RedisServer } from './servers.js'

let server: RedisServer
let client: AnyRedisClient
const open: { close(): unknown }[] = []
let t = Date.now()
const clock = { now: () => t, advance: (ms: number) => (t += ms) }

beforeAll(async () => {
  server = await privateRedis()
  client = await redis(server.url)
}, 120_000)
afterEach(async () => {
  server.resume()
  for (const o of open.splice(0).reverse()) await o.close()
})
afterAll(async () => {
  await (client as unknown as { close(): Promise<void> }).close().catch(() => {})
  await server.kill()
})

function health(options: Parameters<typeof createHealthCheck>[0]): HealthCheck {
  const h = createHealthCheck({ probeTimeout: 300, now: clock.now, ...options })
  open.push(h)
  return h
}
const l2Options = { commandTimeout: 250, breaker: { threshold: 2, resetTimeout: 100 } }

describe('health of a tiered cache over a private redis-server', () => {
  it('L2 paused or killed: degraded, still live and ready, with the reason and last error', async () => {
    const l1 = createMemCache()
    const l2 = createRedisStore({ client, prefix: 'hl2', ...l2Options })
    const cache = createTieredCache({ l1, l2 })
    open.push(cache, l1)
    const h = health({ l1, l2 })
    const ok = await h.check()
    expect(ok).toMatchObject({ status: 'ok', live: true, ready: true, readyForWrites: true })
    expect(ok.components.l2).toMatchObject({ status: 'ok', reasons: [], lastError: undefined })
    const ns = cache.namespace<number>('players')
    await ns.set('actor:1', 7)

    server.pause()
    const paused = await h.check()
    expect(paused).toMatchObject({
      status: 'degraded',
      live: true,
      ready: true,
      readyForWrites: true,
    })
    expect(paused.components.l2?.status).toBe('down')
    // the probe's own timeout, or the store's command timeout, whichever came first
    expect(paused.components.l2?.reasons.join()).toMatch(/no answer within 300 ms|probe failed/)
    expect(paused.components.l1?.status).toBe('ok')
    expect(await ns.get('actor:1')).toBe(7) // L1 still serves
    server.resume()

    // the commands that timed out during the pause were reported: degraded until the window passes
    await eventually(
      async () => (await h.check()).components.l2?.status === 'degraded',
      20_000,
      'L2 back',
    )
    const back = (await h.check()).components.l2
    expect(back?.lastError?.code).toBe('E_TIER_UNAVAILABLE')
    expect(back?.reasons.some((r) => /errors? in the last 30000 ms/.test(r))).toBe(true)
    clock.advance(30_001)
    expect((await h.check()).status).toBe('ok')

    await server.kill()
    await eventually(
      async () => (await h.check()).components.l2?.status === 'down',
      20_000,
      'L2 down',
    )
    const killed = await h.check()
    expect(killed).toMatchObject({ status: 'degraded', live: true, ready: true })
    expect(killed.components.l2?.reasons.join()).toMatch(/probe failed/)
    await server.start()
    await eventually(
      async () => (await h.check()).components.l2?.status !== 'down',
      20_000,
      'L2 up',
    )
    clock.advance(30_001)
    expect((await h.check()).status).toBe('ok')
  })

  it('the store of record down: not ready for writes under write_through, ready under write_around', async () => {
    const l1 = createMemCache()
    const record = createRedisStore({ client, prefix: 'hrec', ...l2Options })
    open.push(l1)
    const through = health({ l1, record, strategies: ['write_through'] })
    const around = health({ l1, record, strategies: ['write_around'] })
    expect((await through.check()).readyForWrites).toBe(true)
    server.pause()
    const [t1, a1] = await Promise.all([through.check(), around.check()])
    server.resume()
    expect(t1).toMatchObject({ status: 'degraded', live: true, ready: true, readyForWrites: false })
    expect(t1.components.record?.status).toBe('down')
    expect(a1).toMatchObject({ status: 'degraded', ready: true, readyForWrites: true })
  })

  it('a full write-behind queue: not ready for writes under write_behind', async () => {
    const queue = createMemoryWriteQueue<QueuedWrite>({ capacity: 10 })
    open.push(queue)
    const h = health({ queue, strategies: ['write_behind'] })
    expect((await h.check()).components.queue?.status).toBe('ok')
    const write = (key: string): QueuedWrite => ({
      namespace: 'n',
      key,
      op: 'set',
      value: 1,
      version: 1,
      expiresAt: null,
      tags: [],
      enqueuedAt: 0,
    })
    await queue.enqueue(Array.from({ length: 9 }, (_, i) => write(`k${i}`)))
    const nearly = await h.check()
    expect(nearly.components.queue).toMatchObject({
      status: 'degraded',
      reasons: ['nearly full (9 of 10)'],
    })
    expect(nearly.readyForWrites).toBe(true)
    await queue.enqueue([write('k9')])
    const full = await h.check()
    expect(full.components.queue?.reasons).toEqual(['full (10 of 10)'])
    expect(full).toMatchObject({ status: 'degraded', ready: true, readyForWrites: false })
  })

  it('the bus: pinged, down while Redis is gone, degraded by the reset after it comes back', async () => {
    const l1 = createMemCache()
    const bus = createRedisBus({ client, prefix: 'hbus', ...l2Options })
    const cache = createTieredCache({ l1, bus })
    open.push(cache, bus, l1)
    const h = health({ l1, bus })
    const ns = cache.namespace<number>('players')
    await ns.set('k', 1)
    // an earlier test may have restarted the server: wait until the bus answers and its reset ages
    await eventually(async () => (await h.check()).components.bus?.status !== 'down', 20_000, 'bus')
    clock.advance(30_001)
    const ok = (await h.check()).components.bus
    expect(ok).toMatchObject({ status: 'ok', reasons: [], recentErrors: 0 })
    expect(ok?.probeMs).toBeGreaterThanOrEqual(0)

    await server.kill()
    try {
      await ns.set('k', 2) // the write is local; its invalidation cannot reach the other instances
      const down = await h.check()
      expect(down.components.bus?.status).toBe('down')
      expect(down.components.bus?.reasons.join()).toMatch(/probe failed|no answer within 300 ms/)
      expect(down.components.bus?.lastError?.code).toBe('E_TIER_UNAVAILABLE')
      expect(['ping', 'publish']).toContain(down.components.bus?.lastError?.operation)
      // the bus never makes the cache unready: L1 still serves, writes still apply locally
      expect(down).toMatchObject({
        status: 'degraded',
        live: true,
        ready: true,
        readyForWrites: true,
      })
      expect(await ns.get('k')).toBe(2)
    } finally {
      await server.start()
    }
    // back: the subscription returns, the bus resets its listeners (caches drop what it
    // coordinates), and the health check reports that reset until the error window passes
    await eventually(
      async () => (await h.check()).components.bus?.lastReset?.reason === 'resubscribed',
      20_000,
      'the bus to resubscribe',
    )
    await eventually(
      async () => (await h.check()).components.bus?.status !== 'down',
      20_000,
      'ping',
    )
    const back = (await h.check()).components.bus
    expect(back?.status).toBe('degraded')
    expect(back?.reasons.join()).toMatch(/reset \d+ ms ago \(resubscribed\)/)
    clock.advance(30_001)
    expect((await h.check()).components.bus).toMatchObject({ status: 'ok', reasons: [] })
    // close() removes the health check's listener from the bus (the bus stays the caller's)
    h.close()
    await bus.ping()
  })

  it('a bus without ping (the in-process hub): health from its resets and errors', async () => {
    const hub = createLocalBusHub()
    const bus = hub.connect('solo')
    open.push(bus)
    const h = health({ bus })
    expect((await h.check()).components.bus).toMatchObject({ status: 'ok', probeMs: undefined })
    hub.simulateReset('solo', 'sequence gap from other')
    const reset = (await h.check()).components.bus
    expect(reset?.status).toBe('degraded')
    expect(reset?.lastReset?.reason).toBe('sequence gap from other')
    clock.advance(30_001)
    expect((await h.check()).components.bus?.status).toBe('ok')
    h.close()
    hub.simulateReset('solo', 'after close') // no longer heard: its listener is gone
    expect((await h.check()).components.bus?.lastReset?.reason).toBe('sequence gap from other')
  })

  it('L2 with Redis INFO: its figures, and degraded near maxmemory', async () => {
    const l2 = createRedisStore({ client, prefix: 'hinfo', ...l2Options })
    const info = client as unknown as {
      info(section?: string): Promise<string>
      sendCommand(args: string[]): Promise<unknown>
    }
    const h = health({ l2, redisInfo: info })
    // the client may still be reconnecting after an earlier test restarted the server
    await eventually(
      async () => (await h.check()).components.l2?.status !== 'down',
      20_000,
      'L2 up',
    )
    clock.advance(30_001) // past the errors of that restart
    const ok = await h.check()
    expect(ok.status).toBe('ok')
    const details = ok.components.l2?.details
    expect(details?.usedMemory).toBeGreaterThan(0)
    expect(details).toMatchObject({ maxMemory: 0, maxMemoryPolicy: 'noeviction' })
    expect(details?.connectedClients).toBeGreaterThanOrEqual(1)
    try {
      // a limit the server already uses 95% of (nothing is written while it holds)
      const used = details?.usedMemory as number
      await info.sendCommand(['CONFIG', 'SET', 'maxmemory', String(Math.ceil(used / 0.95))])
      const near = await h.check()
      expect(near).toMatchObject({ status: 'degraded', ready: true })
      expect(near.components.l2?.status).toBe('degraded')
      expect(near.components.l2?.reasons.join()).toMatch(/Redis memory at \d+% of maxmemory/)
    } finally {
      await info.sendCommand(['CONFIG', 'SET', 'maxmemory', '0'])
    }
    expect((await h.check()).status).toBe('ok')
  })

  it('rejects bad options naming the option', () => {
    expect(() => createHealthCheck({ redisInfo: { info: async () => '' } })).toThrow(
      /redisInfo: needs l2/,
    )
    expect(() => createHealthCheck({ probeTimeout: 0 })).toThrow(/probeTimeout/)
    expect(() => createHealthCheck({ strategies: ['nope' as never] })).toThrow(/strategies/)
    expect(() => createHealthCheck({ l2: {} as never })).toThrow(/l2: must be a cache tier/)
    expect(() => createHealthCheck({ bus: {} as never })).toThrow(
      /bus: must be an invalidation bus/,
    )
  })
})
