import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  type CacheEvent,
  CHANNELS,
  type DeliveredInvalidation,
  type QueuedWrite,
} from '@actor-cache/core'
import { TcpProxy } from '@actor-cache/test-utils/tcp-proxy'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  type AnyRedisClient,
  createRedisBus,
  createRedisStore,
  createRedisWriteQueue,
  type RedisTier,
} from '../src/index.js'
import { connect, eventually, intercept, queuedWrite } from './helpers.js'
import { type RedisServer, startRedis } from './servers.js'

let server: RedisServer
const clients: AnyRedisClient[] = []

/**
 * Command deadline of tests that do not test deadlines: far above any reply time on a loaded
 * machine, so only a dead or paused server makes a command fail.
 */
const PATIENT = 10_000

beforeAll(async () => {
  server = await startRedis()
}, 30_000)
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => c.destroy())
  await server?.stop()
})

async function tier(
  options: Partial<Parameters<typeof createRedisStore>[0]> = {},
): Promise<{ tier: RedisTier; client: AnyRedisClient }> {
  const client = await connect(server.url)
  clients.push(client)
  return {
    tier: createRedisStore({ client, prefix: 'f', commandTimeout: PATIENT, ...options }),
    client,
  }
}

/** Runs `fn`, returning its outcome and how long it took. */
async function timed<T>(
  fn: () => Promise<T>,
): Promise<{ ms: number; error: unknown; value: T | undefined }> {
  const t0 = performance.now()
  try {
    const value = await fn()
    return { ms: performance.now() - t0, error: undefined, value }
  } catch (error) {
    return { ms: performance.now() - t0, error, value: undefined }
  }
}

describe('faults', () => {
  it('fails fast with E_TIER_UNAVAILABLE while Redis is down, opens the breaker, and recovers after restart', async () => {
    const { tier: t } = await tier({ breaker: { threshold: 3, resetTimeout: 300 } })
    const store = t.namespace('actors')
    await store.set('a', 1)
    const bus = createRedisBus({
      client: clients.at(-1) as AnyRedisClient,
      prefix: 'f',
      instanceId: 'a',
    })
    const listener = await connect(server.url)
    clients.push(listener)
    const other = createRedisBus({ client: listener, prefix: 'f', instanceId: 'b' })
    const got: DeliveredInvalidation[] = []
    const resets: string[] = []
    other.subscribe({ onInvalidate: (m) => got.push(m), onReset: (r) => resets.push(r) })
    await other.start()
    const queue = createRedisWriteQueue<QueuedWrite>({
      client: clients.at(-2) as AnyRedisClient,
      prefix: 'f',
      name: 'q',
      commandTimeout: PATIENT,
    })
    await queue.enqueue([])

    await server.kill()
    // The breaker's clock stands still while Redis is down: it cannot reach its resetTimeout
    // (and let a trial call through) however slowly the calls below run.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() })
    try {
      const outcomes = []
      for (let i = 0; i < 6; i++) outcomes.push(await timed(() => store.get('a')))
      // every call failed with the typed error before its deadline: it did not wait for Redis
      for (const o of outcomes) {
        expect(o.error).toMatchObject({ code: 'E_TIER_UNAVAILABLE', tier: 'redis' })
        expect(o.ms).toBeLessThan(PATIENT)
      }
      expect(t.breakerState).toBe('open')
      expect(outcomes.slice(3).map((o) => (o.error as Error).message)).toEqual(
        Array(3).fill(expect.stringMatching(/circuit breaker is open/)),
      )
      await expect(bus.publish({ namespace: 'actors', keys: ['a'] })).rejects.toMatchObject({
        code: 'E_TIER_UNAVAILABLE',
      })
      await expect(queue.enqueue([queuedWrite('k')])).rejects.toMatchObject({
        code: 'E_TIER_UNAVAILABLE',
      })
    } finally {
      vi.useRealTimers()
    }

    await server.start() // same port, empty (no persistence)
    await eventually(
      async () => {
        try {
          await store.set('a', 2)
          return true
        } catch {
          return false
        }
      },
      20_000,
      'the store to recover',
    )
    expect(t.breakerState).toBe('closed')
    expect((await store.get('a'))?.value).toBe(2)
    // the subscriber came back and told its listeners to drop what the bus coordinates
    await eventually(() => resets.includes('resubscribed'), 20_000, 'bus reset after restart')
    await eventually(
      async () => {
        await bus.publish({ namespace: 'actors', keys: ['after-restart'] }).catch(() => undefined)
        return got.some((m) => m.keys?.[0] === 'after-restart')
      },
      20_000,
      'bus delivery after restart',
    )
    await queue.enqueue([queuedWrite('k')])
    expect((await queue.claim(10)).map((d) => d.item.key)).toEqual(['k'])
    await Promise.all([bus.close(), other.close(), queue.close()])
  }, 90_000)

  it("sends commands without node-redis's own command timer; writes share an abort signal", async () => {
    // node-redis 6 arms a timer and a signal per command unless told `timeout: 0`; the store's
    // deadline bounds every command anyway, and a write left unsent past its deadline is taken
    // off the client's queue by the signal its window shares (next test)
    const real = await connect(server.url)
    clients.push(real)
    const sent: { command: string; timeout: unknown; signal: unknown }[] = []
    const client = intercept(real, (_, [args, options]) => {
      const o = options as { timeout?: number; abortSignal?: AbortSignal } | undefined
      sent.push({
        command: String((args as string[])[0]),
        timeout: o?.timeout,
        signal: o?.abortSignal,
      })
      return undefined
    })
    const store = createRedisStore({ client, prefix: 'f', commandTimeout: PATIENT }).namespace(
      'timers',
    )
    await store.set('k', 'v')
    await store.set('k2', 'w')
    expect(await store.get('k')).toMatchObject({ value: 'v' })
    expect(await store.getMany(['k', 'absent'])).toMatchObject([{ value: 'v' }, undefined])
    const reads = sent.filter((c) => c.command === 'MGET')
    const writes = sent.filter((c) => c.command !== 'MGET')
    expect(reads.length).toBeGreaterThanOrEqual(2)
    expect(reads.every((c) => c.timeout === 0 && c.signal === undefined)).toBe(true)
    expect(writes.length).toBeGreaterThanOrEqual(2)
    expect(writes.every((c) => c.timeout === 0 && c.signal instanceof AbortSignal)).toBe(true)
    // one signal for writes sent close together, not one per write
    expect(new Set(writes.map((c) => c.signal)).size).toBeLessThan(writes.length)
  })

  it('drops a write still unsent at its deadline, so a reconnect does not apply it late', async () => {
    const proxy = new TcpProxy('127.0.0.1', server.port)
    await proxy.start()
    const client = await connect(`redis://127.0.0.1:${proxy.port}`, { disableOfflineQueue: false })
    clients.push(client)
    const store = createRedisStore({
      client,
      prefix: 'f',
      commandTimeout: 200,
      breaker: { threshold: 1000, resetTimeout: 100 },
    }).namespace('unsent')
    const control = (await tier()).tier.namespace('unsent')
    try {
      await store.set('before', 1)
      await proxy.down()
      await eventually(() => !client.isReady, 10_000, 'the client to see the cut')
      // queued by node-redis while it fails to reconnect: never written to a socket
      const late = await timed(() => store.set('late', 1))
      expect(late.error).toMatchObject({
        code: 'E_TIER_UNAVAILABLE',
        message: expect.stringMatching(/no reply within 200 ms/),
      })
      // The window's signal fires at most 100 ms (the window) after the deadline; a timer due
      // later than that one runs after it, however slow the machine.
      await new Promise((r) => setTimeout(r, 400))
      await proxy.unblock()
      await eventually(() => client.isReady, 10_000, 'the client to reconnect')
      await store.set('after', 1)
      expect(await control.get('before')).toMatchObject({ value: 1 })
      expect(await control.get('after')).toMatchObject({ value: 1 })
      // sent after the reconnect, 'late' would be here (and before 'after', on one connection)
      expect(await control.get('late')).toBeUndefined()
    } finally {
      await proxy.close()
    }
  }, 30_000)

  it('returns within the timeout while Redis is paused (SIGSTOP), and keeps the event loop responsive', async () => {
    const { tier: t, client } = await tier({
      commandTimeout: 150,
      breaker: { threshold: 100, resetTimeout: 100 },
    })
    const store = t.namespace('paused')
    // written through a patient tier: only the reads below may meet the 150 ms deadline
    const patient = createRedisStore({ client, prefix: 'f', commandTimeout: PATIENT })
    await patient.namespace('paused').set('k', 1)
    server.pause()
    try {
      let ticks = 0
      // Due before any deadline can pass, so it runs before the reads fail unless the loop is
      // blocked; counting more ticks would race the loop's speed.
      const ticker = setInterval(() => ticks++, 10)
      const results = await Promise.all(
        Array.from({ length: 20 }, () => timed(() => store.get('k'))),
      )
      clearInterval(ticker)
      for (const r of results) {
        // ended by our deadline, with Redis still paused: no reply could have come
        expect(r.error).toMatchObject({
          code: 'E_TIER_UNAVAILABLE',
          message: expect.stringMatching(/no reply within 150 ms/),
        })
      }
      expect(ticks).toBeGreaterThan(0)
    } finally {
      server.resume()
    }
    await eventually(
      async () => (await store.get('k').catch(() => undefined))?.value === 1,
      20_000,
      'reads after resume',
    )
  })

  it('treats corrupt or foreign bytes as a miss, removes them, and reports a typed decode error', async () => {
    const { tier: t } = await tier()
    const store = t.namespace('corrupt')
    const errors: CacheEvent[] = []
    const onError = (m: unknown): void => {
      errors.push(m as CacheEvent)
    }
    subscribe(CHANNELS.error, onError)
    try {
      await server.cli('SET', 'f:corrupt:foreign', 'hello, not ours')
      await server.cli('SET', 'f:corrupt:truncated', 'AC1 [1,2,null,[],"t"]')
      await server.cli('SET', 'f:corrupt:badjson', 'AC1 [1,2,null,[],"t"]\n{"a":')
      await server.cli(
        'SET',
        'f:corrupt:proto',
        'AC1 [1,2,null,[],"t"]\n{"__proto__":{"polluted":true}}',
      )
      await server.cli(
        'SET',
        'f:corrupt:ctor',
        'AC1 [1,2,null,[],"t"]\n{"constructor":{"prototype":{"polluted":true}}}',
      )
      for (const key of ['foreign', 'truncated', 'badjson', 'proto', 'ctor']) {
        expect(await store.get(key)).toBeUndefined()
        expect(await server.cli('EXISTS', `f:corrupt:${key}`)).toBe('0')
      }
      expect(errors.map((e) => (e.error as { code?: string }).code)).toEqual(
        Array(5).fill('E_DECODE'),
      )
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      // a well-formed entry next to them still reads
      await store.set('fine', { ok: true })
      expect((await store.getMany(['fine', 'foreign'])).map((e) => e?.value)).toEqual([
        { ok: true },
        undefined,
      ])
    } finally {
      unsubscribe(CHANNELS.error, onError)
    }
  })

  it('refuses to go past the largest safe version and handles extreme expiries', async () => {
    const { tier: t } = await tier()
    const store = t.namespace('limits')
    const max = Number.MAX_SAFE_INTEGER
    expect(await store.set('k', 'top', { version: max })).toEqual({ applied: true, version: max })
    expect((await store.get('k'))?.version).toBe(max)
    await expect(store.set('k', 'next')).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'version',
    })
    await store.set('gone', 1)
    expect(await store.set('gone', 2, { expiresAt: 0 })).toMatchObject({ applied: true })
    expect(await store.exists('gone')).toBe(false)
    await store.set('forever', 1, { ttl: 1e300 })
    expect(await store.getTTL('forever')).toBe(Infinity)
    expect(await store.setTTL('forever', 1e300)).toBe(true)
    expect((await store.get('forever'))?.expiresAt).toBeNull()
  })

  it('keeps the newest version when a queue delivers one key out of order', async () => {
    const { tier: t, client } = await tier()
    const store = t.namespace('reorder')
    const a = createRedisWriteQueue<QueuedWrite>({
      client,
      prefix: 'f',
      name: 'reorder',
      consumer: 'A',
    })
    const b = createRedisWriteQueue<QueuedWrite>({
      client,
      prefix: 'f',
      name: 'reorder',
      consumer: 'B',
    })
    const w = (version: number): QueuedWrite => ({
      namespace: 'reorder',
      key: 'actor:1',
      op: 'set',
      value: { v: version },
      version,
      expiresAt: null,
      tags: [],
      enqueuedAt: 0,
    })
    await a.enqueue([w(1), w(2)])
    const [older] = await a.claim(1)
    const [newer] = await b.claim(1)
    // B persists the newer write first, then A the older one: the older must not win
    for (const d of [newer, older]) {
      await store.set(d!.item.key, d!.item.value, { version: d!.item.version })
    }
    expect(await store.get('actor:1')).toMatchObject({ value: { v: 2 }, version: 2 })
    await Promise.all([a.close(), b.close()])
  })
})
