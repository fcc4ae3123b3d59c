import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  type ChangeRecord,
  createMemoryChangeLog,
  STREAM_CHANNELS,
  type StreamGapEvent,
  type StreamLagEvent,
  type StreamRelayEvent,
  streamChannels,
} from '@actor-cache/core'
import { type AnyRedisClient, createRedisChangeTransport } from '@actor-cache/redis'
import {
  type ChangeRelay,
  type ChangeSubscription,
  createChangeRelay,
  createStateTracker,
} from '@actor-cache/state-tracker'
import { Registry } from 'prom-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type CacheMetrics, createCacheMetrics } from '../src/index.js'
import { dropPrefix, eventually, promtool, redis, sample, total, uid } from './helpers.js'

let client: AnyRedisClient
const prefix = `acms${uid()}`
const open: { close(): unknown }[] = []

beforeAll(async () => {
  client = await redis()
})
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await (client as unknown as { close(): Promise<void> }).close()
})

function track<T extends { close(): unknown }>(o: T): T {
  open.push(o)
  return o
}

/** Every event published on `channel` while the test runs. */
function listen<E>(channel: string): E[] {
  const events: E[] = []
  const fn = (e: unknown): void => {
    events.push(e as E)
  }
  subscribe(channel, fn)
  open.push({ close: () => unsubscribe(channel, fn) })
  return events
}

/** A change logged straight into the log (not through a tracker): versions in any order. */
const forged = (entityType: string, entityId: string, version: number): ChangeRecord => ({
  id: `forged-${entityId}-${version}`,
  entityType,
  entityId,
  changeType: 'update',
  oldValue: null,
  newValue: { n: version },
  timestamp: Date.now(),
  userId: 'user:test',
  systemId: 'test',
  version,
})

async function take(sub: ChangeSubscription, n: number): Promise<number[]> {
  const versions: number[] = []
  for (let i = 0; i < n; i++) {
    const next = await sub.next()
    if (next.done === true) throw new Error(`subscription ended after ${i} of ${n}`)
    versions.push(next.value.version)
  }
  return versions
}

const streamSeries = (text: string): string[] =>
  [...text.matchAll(/^actor_cache_stream_\w+/gm)].map((m) => m[0])

describe('change-stream metrics from a real state-tracker stream', () => {
  it('are off by default: nothing subscribed, no stream series', async () => {
    const metrics = track(createCacheMetrics({ registry: new Registry() }))
    expect(streamChannels.lag.hasSubscribers).toBe(false)
    expect(streamChannels.gap.hasSubscribers).toBe(false)
    expect(streamChannels.relay.hasSubscribers).toBe(false)
    expect(streamSeries(await metrics.metrics())).toEqual([])
  })

  it('count lag, gaps detected, unresolved and backfilled; the unresolved gauge returns to 0', async () => {
    const metrics: CacheMetrics = track(
      createCacheMetrics({ registry: new Registry(), streamEvents: true }),
    )
    const lags = listen<StreamLagEvent>(STREAM_CHANNELS.lag)
    const gaps = listen<StreamGapEvent>(STREAM_CHANNELS.gap)
    const log = createMemoryChangeLog()
    const tracker = createStateTracker({ log, systemId: 'test' })
    const stream = track(tracker.changeStream({ pollInterval: 10 }))
    const type = 'gap_core'
    const write = (id: string, version: number) =>
      tracker.trackChange({
        entityType: type,
        entityId: id,
        changeType: version === 1 ? 'create' : 'update',
        newValue: { n: version },
        userId: 'user:test',
      })
    for (const v of [1, 2]) {
      await write('actor:a', v)
      await write('actor:b', v)
    }
    const sub = stream.subscribe({ entityType: type }, { afterTime: 0 }, { gapTimeout: 20 })
    expect(await take(sub, 4)).toEqual([1, 1, 2, 2])
    await write('actor:b', 3)
    expect(await take(sub, 1)).toEqual([3])

    // actor:a's version 4 is logged before its 3: 4 waits, the backfill finds no 3 yet
    await log.append([forged(type, 'actor:a', 4)])
    const next = sub.next()
    await eventually(() => sub.stats().gapsUnresolved === 1, 10_000, 'an unresolved gap')
    let text = await metrics.metrics()
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'detected' })).toBe(1)
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'unresolved' })).toBe(1)
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'backfilled' })).toBeUndefined()
    expect(sample(text, 'actor_cache_stream_gaps_unresolved')).toBe(1)

    await log.append([forged(type, 'actor:a', 3)])
    expect(((await next) as IteratorYieldResult<ChangeRecord>).value.version).toBe(3)
    expect(await take(sub, 1)).toEqual([4])
    text = await metrics.metrics()
    const stats = sub.stats()
    expect(stats).toMatchObject({ gapsDetected: 1, gapsBackfilled: 1, gapsUnresolved: 0 })
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'detected' })).toBe(
      stats.gapsDetected,
    )
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'backfilled' })).toBe(
      stats.gapsBackfilled,
    )
    expect(sample(text, 'actor_cache_stream_gaps_unresolved')).toBe(0)
    expect(gaps.map((g) => g.outcome)).toEqual(['detected', 'unresolved', 'backfilled'])

    // one lag observation per delivered batch, in seconds and in changes
    expect(lags.length).toBeGreaterThan(0)
    expect(sample(text, 'actor_cache_stream_lag_seconds_count')).toBe(lags.length)
    expect(sample(text, 'actor_cache_stream_lag_changes_count')).toBe(lags.length)
    expect(sample(text, 'actor_cache_stream_lag_seconds_sum')).toBeCloseTo(
      lags.reduce((s, e) => s + e.ms / 1000, 0),
      9,
    )
    expect(sample(text, 'actor_cache_stream_lag_changes_sum')).toBe(
      lags.reduce((s, e) => s + e.changes, 0),
    )
    // the largest bucket holds them all; lag within a second lands below it
    expect(sample(text, 'actor_cache_stream_lag_seconds_bucket', { le: '+Inf' })).toBe(lags.length)
    expect(sample(text, 'actor_cache_stream_lag_seconds_bucket', { le: '1' })).toBe(
      lags.filter((e) => e.ms <= 1000).length,
    )
  })

  it('count a gap the feed itself closes as detected only', async () => {
    const metrics = track(createCacheMetrics({ registry: new Registry(), streamEvents: true }))
    const log = createMemoryChangeLog()
    const tracker = createStateTracker({ log, systemId: 'test' })
    const stream = track(tracker.changeStream({ pollInterval: 10 }))
    const type = 'quick_core'
    // no backfill within the test: only the feed can close the gap
    const sub = stream.subscribe({ entityType: type }, { afterTime: 0 }, { gapTimeout: 600_000 })
    await log.append([forged(type, 'actor:c', 1)])
    expect(await take(sub, 1)).toEqual([1])
    await log.append([forged(type, 'actor:c', 3)])
    const next = sub.next()
    await eventually(() => sub.stats().gapsDetected === 1, 10_000, 'a gap')
    let text = await metrics.metrics()
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'detected' })).toBe(1)
    expect(sample(text, 'actor_cache_stream_gaps_unresolved')).toBe(0)
    await log.append([forged(type, 'actor:c', 2)])
    expect(((await next) as IteratorYieldResult<ChangeRecord>).value.version).toBe(2)
    expect(await take(sub, 1)).toEqual([3])
    text = await metrics.metrics()
    expect(sub.stats()).toMatchObject({ gapsDetected: 1, gapsBackfilled: 0, gapsUnresolved: 0 })
    expect(total(text, 'actor_cache_stream_gaps_total')).toBe(1)
    expect(sample(text, 'actor_cache_stream_gaps_unresolved')).toBe(0)
  })

  it('count a gap still open when its subscription closes as abandoned; the gauge returns to 0', async () => {
    const metrics = track(createCacheMetrics({ registry: new Registry(), streamEvents: true }))
    const gaps = listen<StreamGapEvent>(STREAM_CHANNELS.gap)
    const log = createMemoryChangeLog()
    const tracker = createStateTracker({ log, systemId: 'test' })
    const stream = track(tracker.changeStream({ pollInterval: 10 }))
    const type = 'left_core'
    const sub = stream.subscribe({ entityType: type }, { afterTime: 0 }, { gapTimeout: 20 })
    await log.append([forged(type, 'actor:d', 1), forged(type, 'actor:e', 1)])
    expect(await take(sub, 2)).toEqual([1, 1])
    // version 2 of actor:d never comes: its 3 waits, the backfill cannot close the gap
    await log.append([forged(type, 'actor:d', 3)])
    const next = sub.next()
    await eventually(() => sub.stats().gapsUnresolved === 1, 10_000, 'an unresolved gap')
    let text = await metrics.metrics()
    expect(sample(text, 'actor_cache_stream_gaps_unresolved')).toBe(1)

    await sub.close()
    expect(await next).toEqual({ done: true, value: undefined })
    text = await metrics.metrics()
    expect(sample(text, 'actor_cache_stream_gaps_unresolved')).toBe(0)
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'abandoned' })).toBe(1)
    expect(sample(text, 'actor_cache_stream_gaps_total', { outcome: 'backfilled' })).toBeUndefined()
    expect(gaps.map((g) => [g.outcome, g.entityId, g.expected])).toEqual([
      ['detected', 'actor:d', 2],
      ['unresolved', 'actor:d', 2],
      ['abandoned', 'actor:d', 2],
    ])
    // closing again publishes nothing more
    await sub.close()
    expect(gaps).toHaveLength(3)
  })

  it('count relay leases acquired, taken over and lost, as the relays count them', async () => {
    const metrics = track(createCacheMetrics({ registry: new Registry(), streamEvents: true }))
    const events = listen<StreamRelayEvent>(STREAM_CHANNELS.relay)
    const log = createMemoryChangeLog()
    const name = `s${uid()}`
    const transport = track(createRedisChangeTransport({ client, prefix, name }))
    const relay = (id: string): ChangeRelay =>
      track(createChangeRelay({ log, transport, id, leaseTtl: 300, pollInterval: 20 }))
    const a = relay('relay-a')
    const b = relay('relay-b')
    a.start()
    await eventually(() => a.stats().role === 'leader', 10_000, 'a leader')
    b.start()
    // the lease vanishes as if its holder had paused past it: a relay takes it over, the
    // holder finds it lost on its next renewal
    const redisCommands = client as unknown as {
      keys(pattern: string): Promise<string[]>
      del(keys: string[]): Promise<number>
    }
    const leases = await redisCommands.keys(`${prefix}:cs:*${name}*:lease`)
    expect(leases).toHaveLength(1)
    await redisCommands.del(leases)
    await eventually(
      () =>
        events.some((e) => e.outcome === 'takeover') && events.some((e) => e.outcome === 'lost'),
      10_000,
      'a takeover and a lost lease',
    )
    const text = await metrics.metrics()
    const stats = [a.stats(), b.stats()]
    const sum = (k: 'acquisitions' | 'takeovers' | 'lost') => stats.reduce((n, s) => n + s[k], 0)
    expect(sample(text, 'actor_cache_stream_relay_leases_total', { outcome: 'takeover' })).toBe(
      sum('takeovers'),
    )
    expect(sample(text, 'actor_cache_stream_relay_leases_total', { outcome: 'lost' })).toBe(
      sum('lost'),
    )
    expect(sample(text, 'actor_cache_stream_relay_leases_total', { outcome: 'acquired' })).toBe(
      sum('acquisitions') - sum('takeovers'),
    )
    expect(sum('takeovers')).toBeGreaterThan(0)
    expect(sum('lost')).toBeGreaterThan(0)
  })

  it('pass promtool check metrics, and close() unsubscribes and removes them', async () => {
    const registry = new Registry()
    const metrics = createCacheMetrics({ registry, streamEvents: true })
    const log = createMemoryChangeLog()
    const tracker = createStateTracker({ log, systemId: 'test' })
    const stream = track(tracker.changeStream({ pollInterval: 10 }))
    const sub = stream.subscribe({ entityType: 'promtool_core' }, { afterTime: 0 })
    await tracker.trackChange({
      entityType: 'promtool_core',
      entityId: 'actor:1',
      changeType: 'create',
      newValue: { n: 1 },
      userId: 'user:test',
    })
    expect(await take(sub, 1)).toEqual([1])
    const text = await metrics.metrics()
    expect(new Set(streamSeries(text))).toEqual(
      new Set([
        'actor_cache_stream_gaps_unresolved',
        'actor_cache_stream_lag_seconds_bucket',
        'actor_cache_stream_lag_seconds_sum',
        'actor_cache_stream_lag_seconds_count',
        'actor_cache_stream_lag_changes_bucket',
        'actor_cache_stream_lag_changes_sum',
        'actor_cache_stream_lag_changes_count',
      ]),
    )
    const result = await promtool(() => ['check', 'metrics'], {}, text)
    expect(result.output).toBe('')
    expect(result.code).toBe(0)
    metrics.close()
    expect(streamChannels.lag.hasSubscribers).toBe(false)
    expect(streamChannels.gap.hasSubscribers).toBe(false)
    expect(streamChannels.relay.hasSubscribers).toBe(false)
    expect((await registry.metrics()).trim()).toBe('')
  })
})
