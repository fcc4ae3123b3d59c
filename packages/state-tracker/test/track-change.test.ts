import type { ChangeLog } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker, type StateTracker, trackAs } from '../src/index.js'
import { LOGS, type TestLog } from './logs.js'

interface Stats {
  level: number
  hp: number
  email?: string
}

let n = 0
const actor = (): string => `actor:${++n}`

/** A log that counts the calls reaching it. */
function counting(log: ChangeLog): { log: ChangeLog; calls: () => number } {
  let calls = 0
  const counted = Object.fromEntries(
    (['append', 'query', 'history', 'head', 'readFeed'] as const).map((m) => [
      m,
      (...args: unknown[]) => {
        calls++
        return (log[m] as (...a: unknown[]) => unknown)(...args)
      },
    ]),
  ) as unknown as ChangeLog
  return { log: counted, calls: () => calls }
}

for (const [name, open] of LOGS) {
  describe(`trackChange (${name} log)`, () => {
    let t: TestLog
    let tracker: StateTracker
    beforeAll(async () => {
      t = await open()
      tracker = createStateTracker({ log: t.log, systemId: 'combat' })
    })
    afterAll(async () => {
      await t?.close()
    })

    it("logs the design document's change with a version, a hash and the previous hash", async () => {
      const id = actor()
      const created = await tracker.trackChange({
        entityType: 'primary_core',
        entityId: id,
        changeType: 'create',
        newValue: { level: 1, hp: 100 },
        userId: 'user:456',
      })
      const oldStats: Stats = { level: 1, hp: 100 }
      const newStats: Stats = { level: 2, hp: 120 }
      const updated = await tracker.trackChange({
        entityType: 'primary_core',
        entityId: id,
        changeType: 'update',
        oldValue: oldStats,
        newValue: newStats,
        timestamp: Math.floor(Date.now() / 1000),
        userId: 'user:456',
        systemId: 'leveling',
      })
      expect(created).toMatchObject({
        version: 1,
        prevHash: null,
        changeType: 'create',
        systemId: 'combat',
      })
      expect(created.hash).toMatch(/^[0-9a-f]{64}$/)
      expect(updated).toMatchObject({
        version: 2,
        prevHash: created.hash,
        oldValue: oldStats,
        newValue: newStats,
        userId: 'user:456',
        systemId: 'leveling',
      })
      // stamped by the log's clock, not by the caller's seconds
      expect(updated.timestamp).toBeGreaterThan(Date.now() - 60 * 60_000)
      expect(updated.timestamp).toBeGreaterThanOrEqual(created.timestamp)
      const history = await tracker.history('primary_core', id)
      expect(history.map((r) => [r.version, r.hash, r.prevHash ?? null])).toEqual([
        [1, created.hash, null],
        [2, updated.hash, created.hash],
      ])
      expect(await tracker.verify('primary_core', id)).toMatchObject({
        ok: true,
        records: 2,
        head: { version: 2, hash: updated.hash, exists: true },
      })
    })

    it('fills in the old value from the log, and deletes and re-creates along one chain', async () => {
      const id = actor()
      const track = (changeType: 'create' | 'update' | 'delete', newValue?: Stats) =>
        tracker.trackChange({
          entityType: 'primary_core',
          entityId: id,
          changeType,
          newValue,
          userId: 'u',
        })
      await track('create', { level: 1, hp: 1 })
      const up = await track('update', { level: 1, hp: 2 })
      const del = await track('delete')
      const again = await track('create', { level: 9, hp: 9 })
      expect(up.oldValue).toEqual({ level: 1, hp: 1 })
      expect(del).toMatchObject({ version: 3, oldValue: { level: 1, hp: 2 }, newValue: null })
      expect(again).toMatchObject({ version: 4, oldValue: null, prevHash: del.hash })
      expect((await tracker.verify('primary_core', id)).ok).toBe(true)
    })

    it('refuses a change whose expected state is not the log head, with E_CONFLICT', async () => {
      const id = actor()
      const base = { entityType: 'primary_core', entityId: id, userId: 'u' } as const
      await tracker.trackChange({ ...base, changeType: 'create', newValue: { level: 1, hp: 1 } })
      await tracker.trackChange({ ...base, changeType: 'update', newValue: { level: 2, hp: 1 } })
      const cases: [Parameters<StateTracker['trackChange']>, RegExp][] = [
        [
          [
            { ...base, changeType: 'update', newValue: { level: 3, hp: 1 } },
            { expectedVersion: 1 },
          ],
          /expected version 1, but it is at version 2/,
        ],
        [
          [
            { ...base, changeType: 'update', newValue: { level: 3, hp: 1 } },
            { expectedVersion: 'absent' },
          ],
          /expected it absent/,
        ],
        [
          [{ ...base, changeType: 'create', newValue: { level: 3, hp: 1 } }],
          /creates it, but it is at version 2/,
        ],
        [
          [
            {
              ...base,
              changeType: 'update',
              oldValue: { level: 1, hp: 1 },
              newValue: { level: 3, hp: 1 },
            },
          ],
          /old value that is not version 2's/,
        ],
      ]
      for (const [args, message] of cases) {
        const error = await tracker.trackChange(...args).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toMatchObject({
          code: 'E_CONFLICT',
          namespace: 'primary_core',
          key: id,
          actualVersion: 2,
          message: expect.stringMatching(message),
        })
      }
      await tracker.trackChange({ ...base, changeType: 'delete' }, { expectedVersion: 2 })
      await expect(
        tracker.trackChange({ ...base, changeType: 'update', newValue: { level: 1, hp: 1 } }),
      ).rejects.toMatchObject({ code: 'E_CONFLICT', message: expect.stringMatching(/deleted/) })
      await expect(
        tracker.trackChange(
          { ...base, changeType: 'update', newValue: { level: 1, hp: 1 } },
          { expectedVersion: 'exists' },
        ),
      ).rejects.toMatchObject({ code: 'E_CONFLICT' })
      // nothing of the refused changes was logged
      expect((await tracker.history('primary_core', id)).map((r) => r.version)).toEqual([1, 2, 3])
    })

    it('returns the first record when a change id is tracked again, and refuses a reused id', async () => {
      const id = actor()
      const change = {
        id: `retry-${id}`,
        entityType: 'primary_core',
        entityId: id,
        changeType: 'create',
        newValue: { level: 1, hp: 5 },
        userId: 'u',
      } as const
      const first = await tracker.trackChange(change)
      await tracker.trackChange({
        ...change,
        id: undefined,
        changeType: 'update',
        newValue: { level: 2, hp: 5 },
      })
      // a retry after the reply was lost: the create is below a newer head now, and is not
      // refused as a create of an existing entity
      const retried = await tracker.trackChange(change, { expectedVersion: 'absent' })
      expect(retried).toMatchObject({ id: first.id, version: 1, hash: first.hash })
      await expect(
        tracker.trackChange({ ...change, newValue: { level: 1, hp: 6 } }),
      ).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        message: expect.stringMatching(/already logged for another change/),
      })
      expect(await tracker.history('primary_core', id)).toHaveLength(2)
    })

    it('takes the author from trackAs, and refuses a change without one before any I/O', async () => {
      const counted = counting(t.log)
      const strict = createStateTracker({ log: counted.log })
      const id = actor()
      const base = {
        entityType: 'primary_core',
        entityId: id,
        changeType: 'create',
        newValue: { level: 1, hp: 1 },
      } as const
      await expect(strict.trackChange(base)).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        option: 'userId',
      })
      await expect(
        trackAs({ userId: 'user:1' }, () => strict.trackChange(base)),
      ).rejects.toMatchObject({
        option: 'systemId',
      })
      expect(counted.calls()).toBe(0)
      const logged = await trackAs({ userId: 'user:1', systemId: 'api' }, () =>
        trackAs({ systemId: 'api-v2' }, async () => {
          await Promise.resolve()
          return strict.trackChange(base)
        }),
      )
      expect(logged).toMatchObject({ userId: 'user:1', systemId: 'api-v2' })
    })

    it('rejects bad input with typed errors before any I/O', async () => {
      const counted = counting(t.log)
      const strict = createStateTracker({ log: counted.log, systemId: 's' })
      const ok = {
        entityType: 'primary_core',
        entityId: 'actor:x',
        changeType: 'update',
        newValue: { hp: 1 },
        userId: 'u',
      }
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      const bad: [unknown, unknown, string][] = [
        [null, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, entityType: '' }, undefined, 'E_INVALID_KEY'],
        [{ ...ok, entityType: 'a b' }, undefined, 'E_INVALID_KEY'],
        [{ ...ok, entityId: '' }, undefined, 'E_INVALID_KEY'],
        [{ ...ok, entityId: 'x'.repeat(100_000) }, undefined, 'E_INVALID_KEY'],
        [{ ...ok, changeType: 'upsert' }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, newValue: undefined }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, changeType: 'delete' }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, changeType: 'create', oldValue: { hp: 0 } }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, newValue: cyclic }, undefined, 'E_SERIALIZATION'],
        [{ ...ok, timestamp: Number.NaN }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, id: '' }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, id: 'a\nb' }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, userId: '' }, undefined, 'E_INVALID_OPTION'],
        [{ ...ok, userId: 42 }, undefined, 'E_INVALID_OPTION'],
        [ok, { expectedVersion: -1 }, 'E_INVALID_OPTION'],
        [ok, { expectedVersion: 1.5 }, 'E_INVALID_OPTION'],
        [ok, { expectedVersion: 'latest' }, 'E_INVALID_OPTION'],
      ]
      for (const [i, [change, options, code]] of bad.entries()) {
        await expect(
          strict.trackChange(change as never, options as never),
          `case ${i}`,
        ).rejects.toMatchObject({ code })
      }
      expect(counted.calls()).toBe(0)
    })
  })
}

describe('createStateTracker options', () => {
  it('rejects what is not a change log, and bad settings', () => {
    expect(() => createStateTracker({ log: {} as ChangeLog })).toThrow(/log: must be a ChangeLog/)
    const log = {
      append() {},
      query() {},
      history() {},
      head() {},
      readFeed() {},
    } as unknown as ChangeLog
    expect(() => createStateTracker({ log, maxRetries: -1 })).toThrow(/maxRetries/)
    expect(() => createStateTracker({ log, checkpointKey: 'short' })).toThrow(/at least 32 bytes/)
    expect(() => createStateTracker({ log, sensitiveFields: { primary_core: ['a..b'] } })).toThrow(
      /sensitiveFields.primary_core/,
    )
    expect(() => createStateTracker({ log, systemId: '' })).toThrow(/systemId/)
  })
})
