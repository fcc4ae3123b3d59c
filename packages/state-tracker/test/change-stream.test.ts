import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { type ChangeRecord, STREAM_CHANNELS, type StreamGapEvent } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker, type StateTracker } from '../src/index.js'
import { pgliteLog, postgresLog, type TestLog } from './logs.js'
import { expectSequences, take, write, writeRounds } from './stream-helpers.js'

const ENGINES = [
  ['postgres', postgresLog],
  ['pglite', pgliteLog],
] as const

let n = 0
const ids = (count: number): string[] => {
  n++
  return Array.from({ length: count }, (_, i) => `actor:${n}-${i}`)
}
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
const ranges = (type: string, list: readonly string[], from: number, to: number) =>
  new Map(list.map((id) => [`${type}/${id}`, { from, to }]))

for (const [engine, open] of ENGINES) {
  describe(`change streams (${engine})`, () => {
    let t: TestLog
    let tracker: StateTracker
    // a second tracker over the same log, whose appends the stream is not nudged by
    let other: StateTracker
    beforeAll(async () => {
      t = await open()
      tracker = createStateTracker({ log: t.log, systemId: 'test' })
      other = createStateTracker({ log: t.log, systemId: 'other' })
    })
    afterAll(async () => {
      await t?.close()
    })

    it('catches up from the log, then follows live, with writes racing the seam', async () => {
      const type = 'seam_core'
      const actors = ids(6)
      await writeRounds(tracker, type, actors, { from: 1, to: 5 })
      const stream = tracker.changeStream({ pollInterval: 20, batchSize: 7 })
      try {
        const sub = stream.subscribe({ entityType: type }, { afterTime: 0 })
        // the writers run while the subscription catches up: some changes land before its
        // place in the relay is taken, some after, some both in the catch-up and live
        const writers = Promise.all([
          writeRounds(tracker, type, actors.slice(0, 3), { from: 6, to: 20 }),
          writeRounds(other, type, actors.slice(3), { from: 6, to: 20 }),
        ])
        const seen = await take(sub, actors.length * 20)
        await writers
        expectSequences(seen, ranges(type, actors, 1, 20))
        expect(sub.stats()).toMatchObject({ delivered: 120, gapsUnresolved: 0, early: 0 })
        await sub.close()
        expect((await sub.next()).done).toBe(true)
      } finally {
        await stream.close()
      }
    })

    it('fans out to several subscribers over many entities, each seeing every version once', async () => {
      const type = 'fan_core'
      const actors = ids(40)
      const stream = tracker.changeStream({ pollInterval: 10, batchSize: 50 })
      try {
        const subs = [
          stream.subscribe({ entityType: type }, { fromNow: true }),
          stream.subscribe({ entityType: [type, 'unrelated'] }, { afterTime: 0 }),
          stream.subscribe({ entityType: type, entityId: actors.slice(0, 10) }, { afterTime: 0 }),
        ]
        await Promise.all(subs.map((s) => s.start()))
        await Promise.all([
          writeRounds(tracker, type, actors.slice(0, 20), { from: 1, to: 4 }),
          writeRounds(other, type, actors.slice(20), { from: 1, to: 4 }),
        ])
        const all = await Promise.all(subs.map((s, i) => take(s, i === 2 ? 40 : 160)))
        expectSequences(all[0] as ChangeRecord[], ranges(type, actors, 1, 4))
        expectSequences(all[1] as ChangeRecord[], ranges(type, actors, 1, 4))
        expectSequences(all[2] as ChangeRecord[], ranges(type, actors.slice(0, 10), 1, 4))
        for (const s of subs) expect(s.stats().gapsUnresolved).toBe(0)
      } finally {
        await stream.close()
      }
      expect(stream.stats().subscriptions).toBe(0)
    })

    it('lets a slow subscriber overflow into log reads without holding a fast one back', async () => {
      const type = 'slow_core'
      const actors = ids(10)
      const stream = tracker.changeStream({ pollInterval: 5, batchSize: 5, capacity: 20 })
      try {
        const fast = stream.subscribe({ entityType: type }, { afterTime: 0 })
        const slow = stream.subscribe({ entityType: type }, { afterTime: 0 }, { bufferSize: 10 })
        const fastFirst = fast.next()
        const slowFirst = slow.next()
        await write(tracker, type, actors[0] as string, 1)
        // the slow one takes its first change, then nothing until the fast one has all of them
        const s1 = (await slowFirst) as IteratorYieldResult<ChangeRecord>
        const f1 = (await fastFirst) as IteratorYieldResult<ChangeRecord>
        await write(tracker, type, actors[1] as string, 1)
        const writers = (async () => {
          for (const id of actors.slice(2)) await write(tracker, type, id, 1)
          await writeRounds(tracker, type, actors, { from: 2, to: 10 })
        })()
        const fastSeen = [f1.value, ...(await take(fast, 99))]
        await writers
        expectSequences(fastSeen, ranges(type, actors, 1, 10))
        // the relay moved on 100 changes while the slow one held 1: it fell out of the window
        const slowSeen = [s1.value, ...(await take(slow, 99))]
        expectSequences(slowSeen, ranges(type, actors, 1, 10))
        expect(slow.stats().overflows).toBeGreaterThan(0)
        expect(slow.stats().delivered).toBe(100)
      } finally {
        await stream.close()
      }
    })

    it('starts after a version, after a time, or from now', async () => {
      const type = 'start_core'
      const [a, b] = ids(2) as [string, string]
      await writeRounds(tracker, type, [a, b], { from: 1, to: 4 })
      const stamp = (await tracker.history(type, a)).at(-1)?.timestamp as number
      const stream = tracker.changeStream({ pollInterval: 10 })
      try {
        const afterV2 = stream.subscribe({ entityType: type, entityId: a }, { afterVersion: 2 })
        const all = stream.subscribe({ entityType: type, entityId: a }, { afterVersion: 0 })
        const afterT = stream.subscribe({ entityType: type }, { afterTime: new Date(stamp) })
        const now = stream.subscribe({ entityType: type }, { fromNow: true })
        expect((await take(afterV2, 2)).map((r) => r.version)).toEqual([3, 4])
        expect((await take(all, 4)).map((r) => r.version)).toEqual([1, 2, 3, 4])
        await new Promise((r) => setTimeout(r, 5)) // let the clock move past the last stamp
        await now.start()
        await writeRounds(tracker, type, [a, b], { from: 5, to: 6 })
        expect((await take(afterV2, 2)).map((r) => r.version)).toEqual([5, 6])
        const nowSeen = await take(now, 4)
        expectSequences(nowSeen, ranges(type, [a, b], 5, 6))
        // afterTime: a's records stamped after a's 4th (b's 4th may share its stamp)
        const later = await take(afterT, 2)
        expect(later.every((r) => r.timestamp > stamp)).toBe(true)
      } finally {
        await stream.close()
      }
    })

    it('holds versions that come early, backfills the gap from the log, reports it', async () => {
      const type = 'gap_core'
      const [a] = ids(1) as [string]
      await writeRounds(tracker, type, [a], { from: 1, to: 2 })
      const events: StreamGapEvent[] = []
      const listen = (e: unknown): void => {
        if ((e as StreamGapEvent).entityId === a) events.push(e as StreamGapEvent)
      }
      subscribe(STREAM_CHANNELS.gap, listen)
      const stream = tracker.changeStream({ pollInterval: 10 })
      try {
        const sub = stream.subscribe({ entityType: type }, { afterTime: 0 }, { gapTimeout: 20 })
        expect((await take(sub, 2)).map((r) => r.version)).toEqual([1, 2])
        // version 4 logged before 3 (appended to the log directly): 4 waits, 3 is backfilled
        await t.log.append([forged(type, a, 4)])
        const next = sub.next()
        for (let i = 0; i < 2000 && sub.stats().gapsUnresolved === 0; i++) {
          await new Promise((r) => setTimeout(r, 5))
        }
        expect(sub.stats()).toMatchObject({ gapsDetected: 1, gapsUnresolved: 1, early: 1 })
        await t.log.append([forged(type, a, 3)])
        expect(((await next) as IteratorYieldResult<ChangeRecord>).value.version).toBe(3)
        expect((await take(sub, 1))[0]?.version).toBe(4)
        expect(sub.stats()).toMatchObject({ gapsDetected: 1, gapsBackfilled: 1, gapsUnresolved: 0 })
        expect(events.map((e) => [e.outcome, e.expected])).toEqual([
          ['detected', 3],
          ['unresolved', 3],
          ['backfilled', 3],
        ])
      } finally {
        unsubscribe(STREAM_CHANNELS.gap, listen)
        await stream.close()
      }
    })
  })
}
