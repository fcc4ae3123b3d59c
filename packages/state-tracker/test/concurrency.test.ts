import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker, type StateTracker } from '../src/index.js'
import { LOGS, postgresLog, type TestLog } from './logs.js'

for (const [name, open] of LOGS) {
  describe(`concurrent writers (${name} log)`, () => {
    let t: TestLog
    let tracker: StateTracker
    beforeAll(async () => {
      t = name === 'postgres' ? await postgresLog({ max: 16 }) : await open()
      tracker = createStateTracker({ log: t.log, systemId: 'test', maxRetries: 100 })
    })
    afterAll(async () => {
      await t?.close()
    })

    it('lets exactly one of 64 concurrent creates of one entity succeed', async () => {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 64 }, (_, i) =>
          tracker.trackChange({
            entityType: 'primary_core',
            entityId: 'actor:race',
            changeType: 'create',
            newValue: { writer: i },
            userId: `user:${i}`,
          }),
        ),
      )
      const won = outcomes.filter((o) => o.status === 'fulfilled')
      const lost = outcomes.filter((o) => o.status === 'rejected')
      expect(won).toHaveLength(1)
      for (const o of lost)
        expect(o.reason).toMatchObject({ code: 'E_CONFLICT', namespace: 'primary_core' })
      const history = await tracker.history('primary_core', 'actor:race')
      expect(history).toHaveLength(1)
      expect(history[0]?.newValue).toEqual(
        won[0]?.status === 'fulfilled' ? won[0].value.newValue : undefined,
      )
    })

    it('gives concurrent updates dense versions along one verified chain', async () => {
      const entityId = 'actor:busy'
      await tracker.trackChange({
        entityType: 'primary_core',
        entityId,
        changeType: 'create',
        newValue: { hp: 0 },
        userId: 'u',
      })
      const writers = 16
      const records = await Promise.all(
        Array.from({ length: writers }, (_, i) =>
          tracker.trackChange({
            entityType: 'primary_core',
            entityId,
            changeType: 'update',
            newValue: { hp: i + 1 },
            userId: 'u',
          }),
        ),
      )
      expect(records.map((r) => r.version).sort((a, b) => a - b)).toEqual(
        Array.from({ length: writers }, (_, i) => i + 2),
      )
      const verified = await tracker.verify('primary_core', entityId)
      expect(verified).toMatchObject({ ok: true, records: writers + 1 })
    })
  })
}
