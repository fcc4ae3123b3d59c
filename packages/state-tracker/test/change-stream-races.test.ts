import { createPrismaChangeLog } from '@actor-cache/prisma-store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChangeSubscription, createStateTracker, type StateTracker } from '../src/index.js'
import { openDatabase, pgliteLog, postgresLog, type TestDatabase, type TestLog } from './logs.js'
import { expectSequences, take, write, writeRounds } from './stream-helpers.js'

const ENGINES = [
  ['postgres', postgresLog],
  ['pglite', pgliteLog],
] as const

/** A small seeded generator (the seed is printed, so a failing run can be replayed). */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const SEED = Number(process.env.STREAM_SEED ?? Date.now() % 1_000_000)
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Takes `n` changes, pausing now and then, as a consumer that is sometimes slow. */
async function takeSlowly(sub: ChangeSubscription, n: number, rand: () => number) {
  const out = []
  for (let i = 0; i < n; i++) {
    if (rand() < 0.02) await pause(Math.floor(rand() * 30))
    out.push(...(await take(sub, 1)))
  }
  return out
}

for (const [engine, open] of ENGINES) {
  describe(`change streams under concurrent writers (${engine}, STREAM_SEED=${SEED})`, () => {
    let t: TestLog
    let a: StateTracker
    let b: StateTracker
    beforeAll(async () => {
      t = await open()
      a = createStateTracker({ log: t.log, systemId: 'writer-a' })
      b = createStateTracker({ log: t.log, systemId: 'writer-b' })
    })
    afterAll(async () => {
      await t?.close()
    })

    it('every subscriber, slow, stalled or fast, sees every version once and in order', async () => {
      const rand = random(SEED)
      const type = 'churn_core'
      const actors = Array.from({ length: 120 }, (_, i) => `actor:${i}`)
      await writeRounds(a, type, actors.slice(0, 30), { from: 1, to: 2 })
      const stream = a.changeStream({ pollInterval: 5, batchSize: 20, capacity: 60 })
      try {
        const subs = [
          stream.subscribe({ entityType: type }, { afterTime: 0 }, { bufferSize: 25 }),
          stream.subscribe({ entityType: type }, { afterTime: 0 }, { bufferSize: 60 }),
          stream.subscribe({ entityType: type }, { afterTime: 0 }, { bufferSize: 10 }),
        ]
        // from now: no catch-up, so it is in the relay's window from the start, and stays put
        const stalled = stream.subscribe(
          { entityType: type },
          { fromNow: true },
          { bufferSize: 10 },
        )
        await Promise.all([...subs, stalled].map((s) => s.start()))
        expect(stalled.stats().mode).toBe('live')
        const total = 120 * 5
        const readers = subs.map((s) => takeSlowly(s, total, rand))
        await Promise.all([
          writeRounds(a, type, actors.slice(0, 30), { from: 3, to: 5 }),
          writeRounds(a, type, actors.slice(30, 60), { from: 1, to: 5 }),
          writeRounds(b, type, actors.slice(60), { from: 1, to: 5 }),
        ])
        const expected = new Map(actors.map((id) => [`${type}/${id}`, { from: 1, to: 5 }]))
        for (const seen of await Promise.all(readers)) expectSequences(seen, expected)
        // the stalled one took nothing while 540 changes passed through a window of 60
        const later = new Map(expected)
        for (const id of actors.slice(0, 30)) later.set(`${type}/${id}`, { from: 3, to: 5 })
        expectSequences(await take(stalled, total - 60), later)
        expect(stalled.stats().overflows).toBeGreaterThan(0)
        for (const s of [...subs, stalled]) {
          expect(s.stats()).toMatchObject({ gapsUnresolved: 0, early: 0 })
        }
      } finally {
        await stream.close()
      }
    })

    it('a subscriber restarted again and again after its last version misses nothing', async () => {
      const rand = random(SEED + 1)
      const type = 'restart_core'
      const id = 'actor:restarted'
      const stream = a.changeStream({ pollInterval: 5 })
      try {
        const writer = writeRounds(b, type, [id], { from: 1, to: 60 })
        const seen: number[] = []
        for (let restarts = 0; seen.length < 60 && restarts < 200; restarts++) {
          const sub = stream.subscribe(
            { entityType: type, entityId: id },
            {
              afterVersion: seen.at(-1) ?? 0,
            },
          )
          const batch = Math.min(60 - seen.length, 1 + Math.floor(rand() * 8))
          seen.push(...(await take(sub, batch)).map((r) => r.version))
          await sub.close()
        }
        await writer
        expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i + 1))
        expect(stream.stats().subscriptions).toBe(0)
      } finally {
        await stream.close()
      }
    })
  })
}

describe('change streams over a feed that delivers versions out of order (postgres)', () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await openDatabase('postgres')
  })
  afterAll(async () => {
    await db?.close()
  })

  it('holds a version whose transaction is older than its predecessor, then releases both', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    const tracker = createStateTracker({ log, systemId: 'test' })
    const stream = tracker.changeStream({ pollInterval: 5 })
    try {
      const sub = stream.subscribe({ entityType: 'late_core' }, { afterTime: 0 })
      // past its (empty) catch-up before anything is written: what follows comes live
      const seen = take(sub, 2)
      for (let i = 0; i < 1000 && sub.stats().mode !== 'live'; i++) await pause(5)
      expect(sub.stats().mode).toBe('live')
      let open: () => void = () => {}
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      let taken: () => void = () => {}
      const txidTaken = new Promise<void>((resolve) => {
        taken = resolve
      })
      // a transaction takes its id first, then logs version 2 after version 1 commits in a
      // younger transaction: the feed (transaction order) yields 2 before 1
      const older = db.prisma.$transaction(
        async (tx) => {
          await tx.$queryRawUnsafe('SELECT pg_current_xact_id()::text')
          taken()
          await gate
          const head = await createPrismaChangeLog({ prisma: tx }).head('late_core', 'actor:1')
          await createPrismaChangeLog({ prisma: tx }).append([
            { ...(head.record as NonNullable<typeof head.record>), id: 'late-2', version: 2 },
          ])
        },
        { timeout: 20_000 },
      )
      await txidTaken
      await write(tracker, 'late_core', 'actor:1', 1)
      open()
      await older
      expect((await seen).map((r) => r.version)).toEqual([1, 2])
      expect(sub.stats()).toMatchObject({ gapsDetected: 1, gapsUnresolved: 0, duplicates: 0 })
    } finally {
      await stream.close()
    }
  })
})
