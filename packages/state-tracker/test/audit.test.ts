import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker, MASK, type StateTracker } from '../src/index.js'
import { LOGS, type TestLog } from './logs.js'

for (const [name, open] of LOGS) {
  describe(`audit queries and export (${name} log)`, () => {
    let t: TestLog
    let tracker: StateTracker
    beforeAll(async () => {
      t = await open()
      tracker = createStateTracker({
        log: t.log,
        systemId: 'api',
        sensitiveFields: { primary_core: ['email', 'account.card'] },
      })
    })
    afterAll(async () => {
      await t?.close()
    })

    it('exports JSON lines with sensitive fields masked, and keeps the log itself intact', async () => {
      const value = {
        hp: 1,
        email: 'ann@example.com',
        account: { card: 'card-4111-secret', tier: 'gold' },
        at: new Date(5),
      }
      await tracker.trackChange({
        entityType: 'primary_core',
        entityId: 'actor:m',
        changeType: 'create',
        newValue: value,
        userId: 'user:ann',
      })
      await tracker.trackChange({
        entityType: 'primary_core',
        entityId: 'actor:m',
        changeType: 'update',
        newValue: { ...value, hp: 2 },
        userId: 'user:ann',
      })
      await tracker.trackChange({
        entityType: 'flexible_stats',
        entityId: 'actor:m',
        changeType: 'create',
        newValue: { email: 'kept' },
        userId: 'user:ann',
      })
      const lines: string[] = []
      for await (const line of tracker.exportJsonLines({ entityId: 'actor:m', limit: 2 }))
        lines.push(line)
      expect(lines).toHaveLength(3)
      const text = lines.join('\n')
      expect(text).not.toContain('ann@example.com')
      expect(text).not.toContain('card-4111-secret')
      const [, update, other] = lines.map((l) => JSON.parse(l))
      expect(update).toMatchObject({
        version: 2,
        userId: 'user:ann',
        oldValue: { hp: 1, email: MASK, account: { card: MASK, tier: 'gold' } },
        newValue: { hp: 2, email: MASK },
      })
      expect(other.newValue).toEqual({ email: 'kept' })
      // masked reads for display; the log keeps the values, and the chain verifies
      const shown = await tracker.history('primary_core', 'actor:m', { masked: true })
      expect(shown[1]?.newValue).toMatchObject({
        email: MASK,
        account: { card: MASK, tier: 'gold' },
      })
      const page = await tracker.query({ entityId: 'actor:m' }, { masked: true })
      expect(JSON.stringify(page.records)).not.toContain('ann@example.com')
      expect((await tracker.history('primary_core', 'actor:m'))[1]?.newValue).toMatchObject({
        email: 'ann@example.com',
      })
      expect((await tracker.verify('primary_core', 'actor:m')).ok).toBe(true)
    })

    it('pages stably while changes are appended', async () => {
      for (let i = 0; i < 30; i++) {
        await tracker.trackChange({
          entityType: 'primary_core',
          entityId: `actor:p${i % 3}`,
          changeType: i < 3 ? 'create' : 'update',
          newValue: { i },
          userId: 'user:pager',
        })
      }
      const seen: number[] = []
      let cursor: string | undefined
      let appended = 0
      do {
        const page = await tracker.query({
          userId: 'user:pager',
          limit: 4,
          ...(cursor ? { cursor } : {}),
        })
        seen.push(...page.records.map((r) => (r.newValue as { i: number }).i))
        cursor = page.nextCursor
        // another writer appends between pages
        if (appended < 5) {
          await tracker.trackChange({
            entityType: 'primary_core',
            entityId: 'actor:p0',
            changeType: 'update',
            newValue: { i: 100 + appended++ },
            userId: 'user:pager',
          })
        }
      } while (cursor)
      const initial = seen.filter((i) => i < 100)
      expect(initial).toEqual(Array.from({ length: 30 }, (_, i) => i))
      expect(new Set(seen).size).toBe(seen.length)
      const filtered = await tracker.query({ userId: 'user:pager', changeType: 'create' })
      expect(filtered.records.map((r) => r.entityId).sort()).toEqual([
        'actor:p0',
        'actor:p1',
        'actor:p2',
      ])
      await expect(tracker.query({ limit: 0 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    })
  })
}
