import type { DeliveredInvalidation } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnyRedisClient,
  createRedisBus,
  type RedisBus,
  type SingleClient,
} from '../src/index.js'
import { connect, eventually } from './helpers.js'
import { type RedisServer, startRedis } from './servers.js'

let server: RedisServer
const clients: AnyRedisClient[] = []
const buses: RedisBus[] = []

beforeAll(async () => {
  server = await startRedis()
}, 30_000)
afterAll(async () => {
  for (const b of buses) await b.close()
  for (const c of clients) await c.close().catch(() => undefined)
  await server?.stop()
})

async function bus(
  instanceId: string,
  prefix = 'bus',
): Promise<{ bus: RedisBus; got: DeliveredInvalidation[]; resets: string[] }> {
  const client = await connect(server.url)
  clients.push(client)
  const b = createRedisBus({ client, instanceId, prefix })
  buses.push(b)
  const got: DeliveredInvalidation[] = []
  const resets: string[] = []
  b.subscribe({ onInvalidate: (m) => got.push(m), onReset: (r) => resets.push(r) })
  await b.start()
  return { bus: b, got, resets }
}

describe('redis invalidation bus', () => {
  it('delivers to other instances in order, never to the sender', async () => {
    const a = await bus('a')
    const b = await bus('b')
    await a.bus.publish({ namespace: 'primary_core', keys: ['actor:1'] })
    await a.bus.publish({ namespace: 'primary_core', patterns: ['actor:2:*'] })
    await a.bus.publish({ tags: ['guild:7'] })
    await eventually(() => b.got.length === 3, 20_000, 'three messages')
    expect(b.got.map((m) => [m.senderId, m.seq])).toEqual([
      ['a', 1],
      ['a', 2],
      ['a', 3],
    ])
    expect(b.got[0]).toMatchObject({ namespace: 'primary_core', keys: ['actor:1'] })
    // Redis delivers to a's subscription in publish order: once b's reply, published after b
    // heard a's three messages, reaches a, any echo of a's own messages would have come first.
    await b.bus.publish({ namespace: 'primary_core', keys: ['reply'] })
    await eventually(() => a.got.length > 0, 20_000, "b's reply")
    expect(a.got.map((m) => [m.senderId, m.keys])).toEqual([['b', ['reply']]])
    expect(b.resets).toEqual([])
  })

  it('rejects malformed messages before publishing', async () => {
    const a = await bus('v1', 'busv')
    await expect(a.bus.publish({ namespace: 'x' })).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    await expect(a.bus.publish({ namespace: 'x', keys: ['bad\n'] })).rejects.toMatchObject({
      code: 'E_INVALID_KEY',
    })
    expect(() => createRedisBus({ client: clients[0] as AnyRedisClient, instanceId: '' })).toThrow(
      /instanceId/,
    )
  })

  it('resets listeners on a sequence gap and on an unreadable message', async () => {
    const b = await bus('gap-b', 'busg')
    const raw = await connect(server.url)
    clients.push(raw)
    const send = (payload: string) =>
      (raw as SingleClient).sendCommand(['PUBLISH', 'busg:invalidate', payload])
    const wire = (q: number) =>
      JSON.stringify({ v: 1, s: 'other', q, t: Date.now(), m: { namespace: 'n', keys: ['k'] } })
    await send(wire(1))
    await send(wire(2))
    await send(wire(5))
    await eventually(() => b.resets.length === 1, 20_000, 'a gap reset')
    expect(b.resets[0]).toMatch(/sequence gap from other/)
    expect(b.got.map((m) => m.seq)).toEqual([1, 2])
    await send('{not json')
    await eventually(() => b.resets.length === 2, 20_000, 'an unreadable-message reset')
    await send(wire(6))
    await eventually(() => b.got.length === 3, 20_000, 'delivery after resets')
  })

  it('hears a restarted sender that kept its instance id', async () => {
    const b = await bus('restart-b', 'busr')
    const first = await bus('pod-a', 'busr')
    await first.bus.publish({ namespace: 'n', keys: ['k1'] })
    await first.bus.publish({ namespace: 'n', keys: ['k2'] })
    await first.bus.close()
    const again = await bus('pod-a', 'busr')
    await again.bus.publish({ namespace: 'n', keys: ['k3'] })
    await eventually(() => b.got.length === 3, 20_000, 'the restarted sender to be heard')
    expect(b.got.map((m) => m.keys?.[0])).toEqual(['k1', 'k2', 'k3'])
  })

  it('does nothing after close, and leaves a caller-supplied subscriber unsubscribed', async () => {
    const subscriber = await connect(server.url)
    clients.push(subscriber)
    const publisher = await connect(server.url)
    clients.push(publisher)
    const b = createRedisBus({ client: publisher, subscriber, prefix: 'busc', instanceId: 'c' })
    await b.start()
    expect(await server.cli('PUBSUB', 'NUMSUB', 'busc:invalidate')).toMatch(/1$/)
    await b.close()
    expect(await server.cli('PUBSUB', 'NUMSUB', 'busc:invalidate')).toMatch(/0$/)
    b.subscribe({ onInvalidate: () => {}, onReset: () => {} })
    await expect(b.start()).rejects.toMatchObject({ code: 'E_CLOSED' })
    expect(await server.cli('PUBSUB', 'NUMSUB', 'busc:invalidate')).toMatch(/0$/)
  })

  it('resets listeners once the subscription is back after its connection is killed', async () => {
    const a = await bus('kill-a', 'busk')
    const b = await bus('kill-b', 'busk')
    await a.bus.publish({ namespace: 'n', keys: ['before'] })
    await eventually(() => b.got.length === 1, 20_000, 'first message')
    // Kill every pub/sub connection: messages published until they resubscribe are lost.
    await server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
    const lost = a.bus.publish({ namespace: 'n', keys: ['maybe-lost'] })
    await lost
    await eventually(() => b.resets.includes('resubscribed'), 20_000, 'reset after resubscribe')
    const resetAt = b.got.length
    await a.bus.publish({ namespace: 'n', keys: ['after'] })
    await eventually(
      () => b.got.slice(resetAt).some((m) => m.keys?.[0] === 'after'),
      20_000,
      'delivery after resubscribe',
    )
  })

  it('ping: hears its own probe back, invalidates nothing, and fails while Redis does not answer', async () => {
    const a = await bus('ping-a', 'busp')
    const b = await bus('ping-b', 'busp')
    await a.bus.ping()
    await b.bus.ping()
    expect(a.got).toEqual([])
    expect(b.got).toEqual([])
    // Redis answers nothing (paused for 3 s): the probe is not heard back within probeTimeout
    await server.cli('CLIENT', 'PAUSE', '3000', 'ALL')
    try {
      await expect(a.bus.ping()).rejects.toMatchObject({ code: 'E_TIER_UNAVAILABLE' })
    } finally {
      await server.cli('CLIENT', 'UNPAUSE')
    }
    await eventually(
      async () =>
        a.bus.ping().then(
          () => true,
          () => false,
        ),
      20_000,
      'ping after unpause',
    )
    await a.bus.close()
    await expect(a.bus.ping()).rejects.toMatchObject({ code: 'E_CLOSED' })
  })
})
