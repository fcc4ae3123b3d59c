import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConflictError } from '../errors.js'
import type { ChangeLog, ChangeRecord } from '../ports/change-log.js'

/** What the change-log suite needs from an implementation. */
export interface ChangeLogTarget {
  /** Label of the describe block. */
  name: string
  /** Creates an empty log (called once for the whole suite). */
  create(): ChangeLog | Promise<ChangeLog>
  /** Releases what `create` made. */
  destroy?(): void | Promise<void>
}

/** Registers the conformance tests every `ChangeLog` implementation must pass. */
export function runChangeLogConformance(target: ChangeLogTarget): void {
  describe(`ChangeLog conformance: ${target.name}`, () => {
    let log: ChangeLog
    let n = 0
    /** A fresh entity per test, so tests share one log without interfering. */
    const entity = (): string => `actor:${++n}`
    const change = (
      entityId: string,
      id: string,
      version: number,
      extra: Partial<ChangeRecord> = {},
    ): ChangeRecord => ({
      id: `${entityId}/${id}`,
      entityType: 'primary_core',
      entityId,
      changeType: version === 1 ? 'create' : 'update',
      oldValue: version === 1 ? null : { hp: version - 1 },
      newValue: { hp: version, at: new Date(0), big: 10n ** 20n },
      timestamp: 1_000 * version,
      userId: 'user:1',
      systemId: 'combat',
      version,
      ...extra,
    })

    beforeAll(async () => {
      log = await target.create()
    })
    afterAll(async () => {
      await target.destroy?.()
    })

    it('appends idempotently by id and refuses a second record for one entity version', async () => {
      const e = entity()
      expect(await log.append([change(e, 'c1', 1), change(e, 'c2', 2)])).toEqual({
        appended: 2,
        duplicates: 0,
      })
      expect(await log.append([change(e, 'c2', 2), change(e, 'c3', 3)])).toEqual({
        appended: 1,
        duplicates: 1,
      })
      await expect(log.append([change(e, 'other', 3)])).rejects.toBeInstanceOf(ConflictError)
      // the message names the version that is taken, not a compare-and-set it never was
      await expect(log.append([change(e, 'other', 3)])).rejects.toMatchObject({
        expectedVersion: 2,
        actualVersion: 3,
        message: expect.stringContaining(`version 3 of primary_core "${e}" is taken by change`),
      })
      await expect(log.append([change(e, 'c4', 4), change(e, 'c5', 4)])).rejects.toBeInstanceOf(
        ConflictError,
      )
      const history = await log.history('primary_core', e)
      expect(history.map((r) => r.version)).toEqual([1, 2, 3])
      expect(history[1]).toMatchObject({
        id: `${e}/c2`,
        changeType: 'update',
        oldValue: { hp: 1 },
        newValue: { hp: 2, at: new Date(0), big: 10n ** 20n },
        timestamp: 2000,
        userId: 'user:1',
        systemId: 'combat',
      })
    })

    it('appends all or none', async () => {
      const e = entity()
      await log.append([change(e, 'a', 1)])
      await expect(log.append([change(e, 'b', 2), change(e, 'dup', 1)])).rejects.toBeInstanceOf(
        ConflictError,
      )
      expect((await log.history('primary_core', e)).map((r) => r.version)).toEqual([1])
    })

    it('rejects malformed records before writing', async () => {
      const e = entity()
      await expect(log.append([{ ...change(e, 'v', 1), version: 1.5 }])).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
      })
      await expect(log.append([{ ...change(e, 'v', 1), version: 0 }])).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
      })
      expect(await log.history('primary_core', e)).toEqual([])
    })

    it('queries with filters and cursors, oldest first', async () => {
      const e = entity()
      const records = Array.from({ length: 25 }, (_, i) =>
        change(e, `q${i + 1}`, i + 1, {
          userId: i % 2 ? 'user:odd' : 'user:even',
          systemId: i < 5 ? 'admin' : 'combat',
        }),
      )
      await log.append(records)
      const seen: number[] = []
      let cursor: string | undefined
      do {
        const page = await log.query({
          entityId: e,
          userId: 'user:odd',
          limit: 4,
          ...(cursor ? { cursor } : {}),
        })
        seen.push(...page.records.map((r) => r.version))
        cursor = page.nextCursor
      } while (cursor)
      expect(seen).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24])
      expect(
        (await log.query({ entityId: e, from: 3_000, to: 5_000 })).records.map((r) => r.version),
      ).toEqual([3, 4])
      expect((await log.query({ entityId: e, systemId: 'admin' })).records).toHaveLength(5)
      expect(
        (await log.query({ entityId: e, changeType: 'create' })).records.map((r) => r.version),
      ).toEqual([1])
      await expect(log.query({ limit: 0 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
      await expect(log.query({ cursor: 'not a cursor' })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
      })
    })

    it('feeds every appended change exactly once, in order, across small batches', async () => {
      const e = entity()
      await log.append(Array.from({ length: 7 }, (_, i) => change(e, `f${i}`, i + 1)))
      const ids: string[] = []
      let checkpoint: string | undefined
      const mine = (): number => ids.filter((id) => id.startsWith(`${e}/`)).length
      // a SQL log holds back what a transaction still running elsewhere on the server may
      // precede: an empty read is not the end until all 7 came (bounded)
      for (let i = 0; i < 4_000 && mine() < 7; i++) {
        const batch = await log.readFeed(checkpoint, 3)
        ids.push(...batch.records.map((r) => r.id))
        checkpoint = batch.checkpoint
        if (batch.records.length === 0) await new Promise((r) => setTimeout(r, 5))
      }
      expect(new Set(ids).size).toBe(ids.length)
      expect(ids.filter((id) => id.startsWith(`${e}/`))).toEqual(
        Array.from({ length: 7 }, (_, i) => `${e}/f${i}`),
      )
      // nothing new: the checkpoint stays where it is
      const again = await log.readFeed(checkpoint, 3)
      expect(again.records).toEqual([])
      await expect(log.readFeed('not a checkpoint', 3)).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
      })
    })

    it('reads from the feed end what is appended after it (when the log has feedEnd)', async () => {
      if (log.feedEnd === undefined) return
      const e = entity()
      await log.append([change(e, 'before', 1)])
      const end = await log.feedEnd()
      await log.append([change(e, 'after', 2)])
      const ids: string[] = []
      let checkpoint: string | undefined = end
      // a SQL log holds back what transactions still running elsewhere may precede: poll a while
      for (let i = 0; i < 2_000 && !ids.includes(`${e}/after`); i++) {
        const batch = await log.readFeed(checkpoint, 100)
        ids.push(...batch.records.map((r) => r.id))
        checkpoint = batch.checkpoint
        if (batch.records.length === 0) await new Promise((r) => setTimeout(r, 5))
      }
      expect(ids).toContain(`${e}/after`)
      expect(new Set(ids).size).toBe(ids.length)
    })

    it('finds a change by id', async () => {
      const e = entity()
      await log.append([change(e, 'i1', 1), change(e, 'i2', 2)])
      const page = await log.query({ id: `${e}/i2` })
      expect(page.records.map((r) => [r.id, r.version])).toEqual([[`${e}/i2`, 2]])
      expect((await log.query({ id: `${e}/none` })).records).toEqual([])
    })

    it('gives the head of an entity and the log clock in one read', async () => {
      const e = entity()
      const before = await log.head('primary_core', e)
      expect(before.record).toBeUndefined()
      expect(Number.isFinite(before.now)).toBe(true)
      // the log's clock is a real clock (the database's for SQL logs), not the records' times
      expect(Math.abs(before.now - Date.now())).toBeLessThan(60 * 60_000)
      await log.append([change(e, 'h1', 1), change(e, 'h3', 3), change(e, 'h2', 2)])
      const head = await log.head('primary_core', e)
      expect(head.record).toMatchObject({ id: `${e}/h3`, version: 3, newValue: { hp: 3 } })
      expect(head.now).toBeGreaterThanOrEqual(before.now - 1_000)
      // another entity type with the same id is another entity
      expect((await log.head('derived_stats', e)).record).toBeUndefined()
    })

    it('keeps history immune to later mutation of the caller objects', async () => {
      const e = entity()
      const r = change(e, 'm', 1)
      await log.append([r])
      ;(r.newValue as { hp: number }).hp = 999
      expect((await log.history('primary_core', e))[0]?.newValue).toMatchObject({ hp: 1 })
    })
  })
}
