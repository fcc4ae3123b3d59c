/**
 * A process killed mid-write (SIGKILL at random points) never leaves a tracked write without its
 * change record, or a record without its write: a child (test/fixtures/tracked-writer.mjs, on the
 * BUILT packages) writes, deletes and rolls back through a tracked TieredCache until it is
 * killed; then every entity's chain verifies against its stored row, and every write the child
 * saw acknowledged is in the log.
 */
import { once } from 'node:events'
import { createPrismaChangeLog, createPrismaStore } from '@actor-cache/prisma-store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker } from '../src/index.js'
import { type Child, spawnChild } from './child.js'
import { DATABASE_URL, openDatabase, sessionsGone, type TestDatabase } from './logs.js'

const WRITER = 'test/fixtures/tracked-writer.mjs'
const TRIALS = 20
const ACTORS = ['actor:0', 'actor:1', 'actor:2', 'actor:3']

/** The application name of a trial's child: its database sessions carry it. */
const appOf = (seed: number): string => `ac-crash-${process.pid}-${seed}`

function spawnWriter(schema: string, seed: number): Child {
  return spawnChild(WRITER, { DATABASE_URL, SCHEMA: schema, SEED: String(seed), APP: appOf(seed) })
}

describe('SIGKILL mid-write with state tracking on (postgres)', () => {
  let db: TestDatabase
  let schema: string
  beforeAll(async () => {
    db = await openDatabase('postgres')
    schema =
      (await db.prisma.$queryRawUnsafe<{ s: string }[]>('SELECT current_schema() AS s'))[0]?.s ?? ''
  })
  afterAll(async () => {
    await db?.close()
  })

  it(`keeps every chain whole and in step with the stored rows over ${TRIALS} kills`, async () => {
    const tracker = createStateTracker({ log: createPrismaChangeLog({ prisma: db.prisma }) })
    const rows = createPrismaStore({ prisma: db.prisma }).namespace('primary_core')
    const acked = new Map<string, number>()
    let next = spawnWriter(schema, 1)
    for (let t = 0; t < TRIALS; t++) {
      const child = next
      if (t + 1 < TRIALS) next = spawnWriter(schema, t + 2)
      await child.waitFor((l) => l === 'ready', 'ready')
      child.proc.send('go')
      // kill after 1 to 25 acknowledged writes: somewhere inside the next ones
      const acks = 1 + ((t * 7) % 25)
      let seen = 0
      await child.waitFor((l) => l.startsWith('ack ') && ++seen >= acks, `${acks} acks`)
      child.proc.kill('SIGKILL')
      await once(child.proc, 'exit').catch(() => undefined)
      // A statement (or COMMIT) the child sent may still run on the server after it died: wait
      // until its sessions are gone, so nothing commits between the reads below.
      await sessionsGone(db, appOf(t + 1))
      expect(child.lines.filter((l) => l.startsWith('error'))).toEqual([])
      for (const line of child.lines) {
        const m = /^ack (\S+) (\d+)$/.exec(line)
        if (m) acked.set(m[1] as string, Math.max(acked.get(m[1] as string) ?? 0, Number(m[2])))
      }
      for (const actor of ACTORS) {
        const stored = await rows.get(actor)
        const head = (await tracker.history('primary_core', actor)).at(-1)
        const state =
          stored === undefined
            ? { exists: false as const }
            : { exists: true as const, value: stored.value, version: stored.version }
        const verified = await tracker.verify('primary_core', actor, { stored: state })
        const outcome = verified.ok
          ? 'ok'
          : `${verified.reason} at version ${verified.version}: ${verified.detail}`
        expect(outcome, `trial ${t}, ${actor}`).toBe('ok')
        // every acknowledged write is logged
        expect(head?.version ?? 0, `trial ${t}, ${actor}`).toBeGreaterThanOrEqual(
          acked.get(actor) ?? 0,
        )
      }
    }
    expect(acked.size).toBeGreaterThan(0)
  }, 600_000)
})
