import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  type ChangeLog,
  createMemoryChangeLog,
  isActorCacheError,
  STREAM_CHANNELS,
  type StreamLagEvent,
  TierUnavailableError,
} from '@actor-cache/core'
import { describe, expect, it } from 'vitest'
import { createChangeStream, createStateTracker } from '../src/index.js'
import { openHandles, take, writeRounds } from './stream-helpers.js'

/** A memory log that counts the calls reaching it. */
function counting(): { log: ChangeLog; calls: () => number } {
  const inner = createMemoryChangeLog()
  let calls = 0
  const log = Object.fromEntries(
    (['append', 'query', 'history', 'head', 'readFeed'] as const).map((m) => [
      m,
      (...args: unknown[]) => {
        calls++
        return (inner[m] as (...a: unknown[]) => unknown)(...args)
      },
    ]),
  ) as unknown as ChangeLog
  return { log, calls: () => calls }
}

describe('change stream input', () => {
  const bad: [string, unknown, unknown, unknown, string][] = [
    ['no filter', undefined, { fromNow: true }, undefined, 'E_INVALID_OPTION'],
    ['a numeric type', { entityType: 7 }, { fromNow: true }, undefined, 'E_INVALID_OPTION'],
    ['an empty type list', { entityType: [] }, { fromNow: true }, undefined, 'E_INVALID_OPTION'],
    ['a malformed type', { entityType: 'a b' }, { fromNow: true }, undefined, 'E_INVALID_KEY'],
    [
      'an empty id',
      { entityType: 't', entityId: '' },
      { fromNow: true },
      undefined,
      'E_INVALID_KEY',
    ],
    ['no start', { entityType: 't' }, undefined, undefined, 'E_INVALID_OPTION'],
    ['an unknown start', { entityType: 't' }, { afterSeq: 3 }, undefined, 'E_INVALID_OPTION'],
    [
      'two starts',
      { entityType: 't' },
      { fromNow: true, afterTime: 1 },
      undefined,
      'E_INVALID_OPTION',
    ],
    ['fromNow false', { entityType: 't' }, { fromNow: false }, undefined, 'E_INVALID_OPTION'],
    [
      'afterVersion without an id',
      { entityType: 't' },
      { afterVersion: 1 },
      undefined,
      'E_INVALID_OPTION',
    ],
    [
      'afterVersion with two ids',
      { entityType: 't', entityId: ['a', 'b'] },
      { afterVersion: 1 },
      undefined,
      'E_INVALID_OPTION',
    ],
    [
      'a negative version',
      { entityType: 't', entityId: 'a' },
      { afterVersion: -1 },
      undefined,
      'E_INVALID_OPTION',
    ],
    [
      'a fractional version',
      { entityType: 't', entityId: 'a' },
      { afterVersion: 1.5 },
      undefined,
      'E_INVALID_OPTION',
    ],
    ['a negative time', { entityType: 't' }, { afterTime: -5 }, undefined, 'E_INVALID_OPTION'],
    [
      'an invalid Date',
      { entityType: 't' },
      { afterTime: new Date('x') },
      undefined,
      'E_INVALID_OPTION',
    ],
    [
      'a string time',
      { entityType: 't' },
      { afterTime: '2024-01-01' },
      undefined,
      'E_INVALID_OPTION',
    ],
    [
      'a zero buffer',
      { entityType: 't' },
      { fromNow: true },
      { bufferSize: 0 },
      'E_INVALID_OPTION',
    ],
    [
      'a buffer past capacity',
      { entityType: 't' },
      { fromNow: true },
      { bufferSize: 1e9 },
      'E_INVALID_OPTION',
    ],
    [
      'a negative gap timeout',
      { entityType: 't' },
      { fromNow: true },
      { gapTimeout: -1 },
      'E_INVALID_OPTION',
    ],
  ]
  for (const [name, filter, from, options, code] of bad) {
    it(`refuses ${name} with ${code} before any I/O`, () => {
      const { log, calls } = counting()
      const stream = createChangeStream({ log })
      let error: unknown
      try {
        // @ts-expect-error: bad input on purpose
        stream.subscribe(filter, from, options)
      } catch (e) {
        error = e
      }
      expect(isActorCacheError(error, code as 'E_INVALID_OPTION'), String(error)).toBe(true)
      expect(calls()).toBe(0)
      expect(stream.stats().subscriptions).toBe(0)
    })
  }

  it('refuses bad stream options', () => {
    const log = createMemoryChangeLog()
    for (const options of [
      { log: {} },
      { log, pollInterval: 0 },
      { log, batchSize: 20_000 },
      { log, capacity: 10, batchSize: 100 },
    ]) {
      expect(() => createChangeStream(options as never)).toThrow(
        /log|pollInterval|batchSize|capacity/,
      )
    }
  })

  it('refuses to subscribe once closed', async () => {
    const stream = createChangeStream({ log: createMemoryChangeLog() })
    await stream.close()
    expect(() => stream.subscribe({ entityType: 't' }, { fromNow: true })).toThrow(/closed/)
  })

  it('closes mid-stream: a pending next() ends, the relay stops, no handle stays open', async () => {
    const before = openHandles()
    const tracker = createStateTracker({ log: createMemoryChangeLog(), systemId: 'test' })
    const stream = tracker.changeStream({ pollInterval: 5 })
    const sub = stream.subscribe({ entityType: 'close_core' }, { afterTime: 0 })
    await writeRounds(tracker, 'close_core', ['a', 'b'], { from: 1, to: 3 })
    expect((await take(sub, 4)).length).toBe(4)
    const other = stream.subscribe({ entityType: 'close_core' }, { fromNow: true })
    const pending = other.next()
    await other.start()
    await sub.close()
    expect(stream.stats().subscriptions).toBe(1)
    await stream.close()
    expect(await pending).toEqual({ done: true, value: undefined })
    expect(stream.stats().subscriptions).toBe(0)
    expect(openHandles()).toBe(before)
  })

  it('ends a for-await loop on break and releases the relay', async () => {
    const tracker = createStateTracker({ log: createMemoryChangeLog(), systemId: 'test' })
    const stream = tracker.changeStream({ pollInterval: 5 })
    await writeRounds(tracker, 'loop_core', ['a'], { from: 1, to: 5 })
    const versions: number[] = []
    for await (const change of stream.subscribe({ entityType: 'loop_core' }, { afterTime: 0 })) {
      versions.push(change.version)
      if (change.version === 3) break
    }
    expect(versions).toEqual([1, 2, 3])
    expect(stream.stats().subscriptions).toBe(0)
    await stream.close()
  })

  it('publishes lag while someone listens, and reports no lag once caught up', async () => {
    const tracker = createStateTracker({ log: createMemoryChangeLog(), systemId: 'test' })
    const stream = tracker.changeStream({ pollInterval: 5 })
    const events: StreamLagEvent[] = []
    const listen = (e: unknown): void => {
      events.push(e as StreamLagEvent)
    }
    subscribe(STREAM_CHANNELS.lag, listen)
    try {
      const sub = stream.subscribe({ entityType: 'lag_core' }, { fromNow: true })
      await sub.start()
      await writeRounds(tracker, 'lag_core', ['a', 'b'], { from: 1, to: 2 })
      expect((await take(sub, 4)).map((r) => r.version)).toEqual([1, 1, 2, 2])
      const mine = events.filter((e) => e.subscription === sub.stats().id)
      expect(mine.length).toBeGreaterThan(0)
      expect(mine.every((e) => e.changes >= 0 && e.ms >= 0)).toBe(true)
      expect(sub.stats()).toMatchObject({ mode: 'live', lagChanges: 0, lagMs: 0, delivered: 4 })
    } finally {
      unsubscribe(STREAM_CHANNELS.lag, listen)
      await stream.close()
    }
  })

  it('retries a log read that fails as unavailable, and ends on any other failure', async () => {
    const inner = createMemoryChangeLog()
    let failures: Error[] = []
    const log: ChangeLog = {
      ...inner,
      append: (r) => inner.append(r),
      history: (t, i) => inner.history(t, i),
      head: (t, i) => inner.head(t, i),
      readFeed: (c, l) => inner.readFeed(c, l),
      query: async (q) => {
        const failure = failures.shift()
        if (failure !== undefined) throw failure
        return inner.query(q)
      },
    }
    const tracker = createStateTracker({ log, systemId: 'test' })
    const stream = tracker.changeStream({ pollInterval: 5 })
    try {
      await writeRounds(tracker, 'retry_core', ['a'], { from: 1, to: 2 })
      failures = [
        new TierUnavailableError('postgres is down'),
        new TierUnavailableError('postgres is down'),
      ]
      const sub = stream.subscribe({ entityType: 'retry_core' }, { afterTime: 0 })
      expect((await take(sub, 2)).map((r) => r.version)).toEqual([1, 2])
      expect(sub.stats().retries).toBe(2)
      failures = [new Error('bad SQL')]
      const broken = stream.subscribe({ entityType: 'retry_core' }, { afterTime: 0 })
      await expect(broken.next()).rejects.toThrow('bad SQL')
      expect(broken.stats().mode).toBe('closed')
      expect(await broken.next()).toEqual({ done: true, value: undefined })
      expect(stream.stats().subscriptions).toBe(1)
    } finally {
      await stream.close()
    }
  })
})
