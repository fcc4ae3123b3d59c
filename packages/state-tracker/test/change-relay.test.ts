import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { type ChangeTransport, STREAM_CHANNELS, type StreamRelayEvent } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type ChangeRelay,
  createChangeRelay,
  createChangeStream,
  createStateTracker,
  type StateTracker,
} from '../src/index.js'
import { postgresLog, type TestLog } from './logs.js'
import { type Client, connect, dropStreams, transportOn, until } from './relay-stack.js'
import { expectSequences, take, writeRounds } from './stream-helpers.js'

let n = 0
const ids = (count: number): string[] => {
  n++
  return Array.from({ length: count }, (_, i) => `actor:${n}-${i}`)
}
const ranges = (type: string, list: readonly string[], from: number, to: number) =>
  new Map(list.map((id) => [`${type}/${id}`, { from, to }]))

describe('change streams through a relay and Redis Streams', () => {
  let t: TestLog
  let client: Client
  let tracker: StateTracker
  let other: StateTracker
  beforeAll(async () => {
    client = await connect()
    t = await postgresLog()
    tracker = createStateTracker({ log: t.log, systemId: 'test' })
    other = createStateTracker({ log: t.log, systemId: 'other' })
  })
  afterAll(async () => {
    await t?.close()
    if (client) await dropStreams(client)
    await client?.close()
  })

  const relayOf = (transport: ChangeTransport, id?: string): ChangeRelay =>
    createChangeRelay({
      log: t.log,
      transport,
      pollInterval: 20,
      leaseTtl: 600,
      trimInterval: 200,
      ...(id === undefined ? {} : { id }),
    })

  it('delivers every version once, in order, to streams of two processes', async () => {
    const transport = transportOn(client)
    const relay = relayOf(transport)
    relay.start()
    // two processes' streams, each with its own reader of the shared transport
    const streams = [0, 1].map(() => createChangeStream({ log: t.log, transport, batchSize: 16 }))
    try {
      const type = 'relay_core'
      const actors = ids(24)
      await writeRounds(tracker, type, actors, { from: 1, to: 2 })
      const subs = streams.map((s) => s.subscribe({ entityType: type }, { afterTime: 0 }))
      await Promise.all(subs.map((s) => s.start()))
      await Promise.all([
        writeRounds(tracker, type, actors.slice(0, 12), { from: 3, to: 8 }),
        writeRounds(other, type, actors.slice(12), { from: 3, to: 8 }),
      ])
      for (const sub of subs) {
        expectSequences(await take(sub, 24 * 8), ranges(type, actors, 1, 8))
        expect(sub.stats().gapsUnresolved).toBe(0)
      }
      expect(relay.stats().role).toBe('leader')
      expect(relay.stats().published).toBeGreaterThanOrEqual(24 * 6)
      for (const s of streams) expect(s.stats().relay.records).toBeGreaterThan(0)
    } finally {
      await Promise.all(streams.map((s) => s.close()))
      await relay.close()
      await transport.close()
    }
  })

  it('runs one relay at a time; a standby takes over when the leader stops', async () => {
    const transport = transportOn(client)
    const events: StreamRelayEvent[] = []
    const listen = (e: unknown): void => {
      events.push(e as StreamRelayEvent)
    }
    subscribe(STREAM_CHANNELS.relay, listen)
    const relays = [relayOf(transport, 'relay-a'), relayOf(transport, 'relay-b')]
    const stream = createChangeStream({ log: t.log, transport })
    try {
      for (const r of relays) r.start()
      await until(() => relays.some((r) => r.stats().role === 'leader'), 'a leader')
      const type = 'standby_core'
      const actors = ids(10)
      const sub = stream.subscribe({ entityType: type }, { fromNow: true })
      await sub.start()
      await writeRounds(tracker, type, actors, { from: 1, to: 3 })
      expectSequences(await take(sub, 30), ranges(type, actors, 1, 3))
      expect(relays.filter((r) => r.stats().role === 'leader')).toHaveLength(1)
      const leader = relays.find((r) => r.stats().role === 'leader') as ChangeRelay
      const standby = relays.find((r) => r !== leader) as ChangeRelay
      const firstEpoch = leader.stats().epoch as number
      await leader.close()
      await writeRounds(tracker, type, actors, { from: 4, to: 6 })
      expectSequences(await take(sub, 30), ranges(type, actors, 4, 6))
      expect(standby.stats().role).toBe('leader')
      expect(standby.stats().epoch).toBeGreaterThan(firstEpoch)
      // a released lease is taken at once, not taken over
      expect(events.filter((e) => e.owner === standby.id).map((e) => e.outcome)).toEqual([
        'acquired',
      ])
    } finally {
      unsubscribe(STREAM_CHANNELS.relay, listen)
      await stream.close()
      await Promise.all(relays.map((r) => r.close()))
      await transport.close()
    }
  })

  it('lets a subscription that falls behind the window re-read the log, missing nothing', async () => {
    const transport = transportOn(client, { shards: 2 })
    const relay = relayOf(transport)
    relay.start()
    const stream = createChangeStream({ log: t.log, transport, batchSize: 5, capacity: 10 })
    try {
      const type = 'slow_core'
      const actors = ids(5)
      const slow = stream.subscribe({ entityType: type }, { fromNow: true }, { bufferSize: 10 })
      await slow.start()
      await writeRounds(tracker, type, actors, { from: 1, to: 2 })
      const first = await take(slow, 1)
      await writeRounds(tracker, type, actors, { from: 3, to: 20 })
      const rest = await take(slow, 5 * 20 - 1)
      expectSequences([...first, ...rest], ranges(type, actors, 1, 20))
      expect(slow.stats().overflows).toBeGreaterThan(0)
    } finally {
      await stream.close()
      await relay.close()
      await transport.close()
    }
  })

  it('starts subscriptions only once a relay has saved a checkpoint, so none misses a change', async () => {
    const transport = transportOn(client)
    const stream = createChangeStream({ log: t.log, transport, pollInterval: 10 })
    const relay = relayOf(transport)
    try {
      const type = 'first_relay_core'
      const actors = ids(4)
      const sub = stream.subscribe({ entityType: type }, { afterTime: 0 })
      const taking = take(sub, 4 * 4)
      // written while no relay ever ran: the first one starts at the log's end
      await new Promise((r) => setTimeout(r, 100))
      await writeRounds(tracker, type, actors, { from: 1, to: 2 })
      relay.start()
      await writeRounds(tracker, type, actors, { from: 3, to: 4 })
      expectSequences(await taking, ranges(type, actors, 1, 4))
    } finally {
      await stream.close()
      await relay.close()
      await transport.close()
    }
  })

  it('is woken by a tracker given the transport, not by its poll', async () => {
    const transport = transportOn(client)
    // a relay that would read the log again only after a minute
    const relay = createChangeRelay({ log: t.log, transport, pollInterval: 60_000, leaseTtl: 3000 })
    relay.start()
    const waking = createStateTracker({
      log: t.log,
      systemId: 'waking',
      changeTransport: transport,
    })
    // a stream the tracker does not know of: only the tracker's wake reaches the relay
    const stream = createChangeStream({ log: t.log, transport })
    try {
      const type = 'woken_core'
      const actors = ids(3)
      const sub = stream.subscribe({ entityType: type }, { fromNow: true })
      await sub.start()
      // idle for longer than its lease: it must renew while it waits
      await new Promise((r) => setTimeout(r, 4000))
      for (let v = 1; v <= 3; v++) {
        await writeRounds(waking, type, actors, { from: v, to: v })
        expectSequences(await take(sub, 3), ranges(type, actors, v, v))
      }
      expect(stream.stats().relay.records).toBe(9)
      // it renewed its lease while it waited, whatever its poll interval
      expect(relay.stats()).toMatchObject({ role: 'leader', acquisitions: 1, lost: 0 })
    } finally {
      await stream.close()
      await relay.close()
      await transport.close()
    }
  }, 20_000)

  it('checks its options before any I/O', () => {
    const transport = transportOn(client)
    const bad = [
      () => createChangeRelay({ log: {} as never, transport }),
      () => createChangeRelay({ log: t.log, transport: {} as never }),
      () => createChangeRelay({ log: t.log, transport, leaseTtl: 10 }),
      () => createChangeRelay({ log: t.log, transport, leaseTtl: 1.5 }),
      () => createChangeRelay({ log: t.log, transport, batchSize: 0 }),
      () => createChangeRelay({ log: t.log, transport, id: '' }),
      () => createChangeStream({ log: t.log, group: 'g' }),
      () => createChangeStream({ log: t.log, transport, group: 'a b' }),
      () => createChangeStream({ log: t.log, transport: {} as never }),
      () => createStateTracker({ log: t.log, changeTransport: {} as never }),
    ]
    for (const make of bad)
      expect(make).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION' }))
    const relay = relayOf(transport)
    return relay.close().then(() => {
      expect(() => relay.start()).toThrow(expect.objectContaining({ code: 'E_CLOSED' }))
    })
  })
})
