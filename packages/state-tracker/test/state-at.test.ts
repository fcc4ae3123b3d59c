import { assertReplayable, longTimeout } from '@actor-cache/test-utils/property'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker, type EntityStateAt, type StateTracker } from '../src/index.js'
import { memoryLog, pgliteLog, type TestLog } from './logs.js'

type Op = { kind: 'write'; value: { hp: number; tags: string[] } } | { kind: 'delete' }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        hp: fc.integer({ min: -5, max: 5 }),
        tags: fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
      })
      .map((value) => ({ kind: 'write' as const, value })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'delete' as const }) },
)

/** The model: apply the operations one by one from nothing, keeping every state. */
function replayModel(ops: readonly Op[]): EntityStateAt[] {
  const states: EntityStateAt[] = [{ exists: false, version: 0 }]
  let exists = false
  for (const o of ops) {
    if (o.kind === 'delete' && !exists) continue
    const version = states.length
    states.push(
      o.kind === 'delete'
        ? { exists: false, version }
        : { exists: true, value: o.value, version, timestamp: 0 },
    )
    exists = o.kind === 'write'
  }
  return states
}

let entity = 0

async function run(tracker: StateTracker, ops: readonly Op[]): Promise<void> {
  const id = `actor:${++entity}`
  let exists = false
  const times: number[] = [Number.NEGATIVE_INFINITY]
  for (const o of ops) {
    if (o.kind === 'delete' && !exists) continue
    const r = await tracker.trackChange({
      entityType: 'primary_core',
      entityId: id,
      changeType: o.kind === 'delete' ? 'delete' : exists ? 'update' : 'create',
      newValue: o.kind === 'write' ? o.value : null,
      userId: 'u',
    })
    times.push(r.timestamp)
    exists = o.kind === 'write'
  }
  const model = replayModel(ops)
  const strip = (s: EntityStateAt) => (s.exists ? { ...s, timestamp: 0 } : s)
  for (const [version, expected] of model.entries()) {
    expect(strip(await tracker.getStateAt('primary_core', id, { version }))).toEqual(expected)
  }
  // by time: the newest version logged at or before it (times never decrease per entity)
  for (const [version, time] of times.entries()) {
    if (version === 0) continue
    const lastAtTime = times.findLastIndex((t) => t <= time)
    expect(strip(await tracker.getStateAt('primary_core', id, { time }))).toEqual(model[lastAtTime])
  }
  expect(await tracker.getStateAt('primary_core', id, { time: (times[1] ?? 0) - 1 })).toEqual({
    exists: false,
    version: 0,
  })
}

for (const [name, open, runs] of [
  ['memory', memoryLog, 200],
  ['pglite', pgliteLog, 25],
] as const) {
  describe(`getStateAt equals a replay from version 1 (${name} log)`, () => {
    let t: TestLog
    let tracker: StateTracker
    beforeAll(async () => {
      t = await open()
      tracker = createStateTracker({ log: t.log, systemId: 's' })
    })
    afterAll(async () => {
      await t?.close()
    })

    it(
      'at every version and every logged time',
      async () => {
        await assertReplayable(
          fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), (ops) =>
            run(tracker, ops),
          ),
          runs,
        )
      },
      longTimeout(120_000),
    )

    it('rejects a version past the newest and a malformed point, before any I/O', async () => {
      await run(tracker, [{ kind: 'write', value: { hp: 1, tags: [] } }])
      const id = `actor:${entity}`
      await expect(tracker.getStateAt('primary_core', id, { version: 2 })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        message: expect.stringMatching(/newest version is 1/),
      })
      for (const bad of [
        {},
        { version: -1 },
        { version: 1, time: 1 },
        { time: Number.NaN },
        null,
      ]) {
        await expect(tracker.getStateAt('primary_core', id, bad as never)).rejects.toMatchObject({
          code: 'E_INVALID_OPTION',
        })
      }
    })
  })
}
