import {
  type ChangeLog,
  type ChangeRecord,
  createMemoryChangeLog,
  jsonSerializer,
} from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashChange } from '../src/chain-hash.js'
import { createStateTracker, type StateTracker } from '../src/index.js'
import { pgliteLog, postgresLog, type TestLog } from './logs.js'

const TYPE = 'primary_core'

/** Tracks create, then updates hp 1..n-1 for `id`. */
async function chain(tracker: StateTracker, id: string, n: number): Promise<ChangeRecord[]> {
  const out = [
    await tracker.trackChange({
      entityType: TYPE,
      entityId: id,
      changeType: 'create',
      newValue: { hp: 0 },
      userId: 'u',
    }),
  ]
  for (let i = 1; i < n; i++) {
    out.push(
      await tracker.trackChange({
        entityType: TYPE,
        entityId: id,
        changeType: 'update',
        newValue: { hp: i },
        userId: 'u',
      }),
    )
  }
  return out
}

const rehash = (r: ChangeRecord): ChangeRecord => ({ ...r, hash: hashChange(r, jsonSerializer) })

/** A log whose reads pass through `forge`: what a writer with access to the table could leave. */
function forged(log: ChangeLog, forge: (records: ChangeRecord[]) => ChangeRecord[]): ChangeLog {
  return {
    ...log,
    append: (r) => log.append(r),
    query: (q) => log.query(q),
    head: (t, i) => log.head(t, i),
    history: async (t, i) => forge(await log.history(t, i)),
    readFeed: async (c, l) => {
      const batch = await log.readFeed(c, l)
      return { ...batch, records: forge(batch.records) }
    },
  }
}

describe('verify catches every forgery', () => {
  const base = createMemoryChangeLog()
  const honest = createStateTracker({ log: base, systemId: 's' })
  beforeAll(async () => {
    await chain(honest, 'actor:1', 5)
  })
  const check = (forge: (rs: ChangeRecord[]) => ChangeRecord[]) =>
    createStateTracker({ log: forged(base, forge) }).verify(TYPE, 'actor:1')

  it('verifies the honest chain', async () => {
    expect(await honest.verify(TYPE, 'actor:1')).toMatchObject({
      ok: true,
      records: 5,
      head: { version: 5 },
    })
  })

  const cases: [
    string,
    (rs: ChangeRecord[]) => ChangeRecord[],
    { version: number; reason: string },
  ][] = [
    [
      'an edited value',
      (rs) => rs.map((r) => (r.version === 3 ? { ...r, newValue: { hp: 999 } } : r)),
      { version: 3, reason: 'hash_mismatch' },
    ],
    [
      'an edited value with its hash recomputed',
      (rs) => rs.map((r) => (r.version === 3 ? rehash({ ...r, newValue: { hp: 999 } }) : r)),
      { version: 4, reason: 'broken_link' },
    ],
    [
      'a removed hash',
      (rs) => rs.map((r) => (r.version === 2 ? ({ ...r, hash: undefined } as ChangeRecord) : r)),
      { version: 2, reason: 'hash_mismatch' },
    ],
    [
      'swapped links, hashes recomputed',
      (rs) => {
        const [a, b] = [rs[2] as ChangeRecord, rs[3] as ChangeRecord]
        return rs.map((r) =>
          r === a
            ? rehash({ ...a, prevHash: b.prevHash ?? null })
            : r === b
              ? rehash({ ...b, prevHash: a.prevHash ?? null })
              : r,
        )
      },
      { version: 3, reason: 'broken_link' },
    ],
    [
      'a duplicated version',
      (rs) => [...rs.slice(0, 3), { ...(rs[2] as ChangeRecord), id: 'copy' }, ...rs.slice(3)],
      { version: 3, reason: 'duplicate_version' },
    ],
    [
      'reordered rows (versions swapped)',
      (rs) =>
        rs
          .map((r) =>
            r.version === 2 ? { ...r, version: 3 } : r.version === 3 ? { ...r, version: 2 } : r,
          )
          .sort((a, b) => a.version - b.version),
      { version: 2, reason: 'hash_mismatch' },
    ],
    [
      'a deleted record',
      (rs) => rs.filter((r) => r.version !== 3),
      { version: 3, reason: 'version_gap' },
    ],
    [
      'a record of another entity',
      (rs) => rs.map((r) => (r.version === 4 ? { ...r, entityId: 'actor:2' } : r)),
      { version: 4, reason: 'entity_mismatch' },
    ],
    [
      'a rewritten old value, hashes recomputed down the chain',
      (rs) => {
        let prev: string | null = null
        return rs.map((r) => {
          const out = rehash({
            ...r,
            prevHash: prev,
            ...(r.version === 4 ? { oldValue: { hp: 42 } } : {}),
          })
          prev = out.hash ?? null
          return out
        })
      },
      { version: 4, reason: 'overlapping_writers' },
    ],
    [
      'a timestamp moved back, hashes recomputed down the chain',
      (rs) => {
        let prev: string | null = null
        return rs.map((r) => {
          const out = rehash({ ...r, prevHash: prev, ...(r.version === 5 ? { timestamp: 0 } : {}) })
          prev = out.hash ?? null
          return out
        })
      },
      { version: 5, reason: 'time_regression' },
    ],
  ]
  for (const [what, forge, expected] of cases) {
    it(`finds ${what}`, async () => {
      expect(await check(forge)).toMatchObject({
        ok: false,
        ...expected,
        detail: expect.any(String),
      })
    })
  }

  it('finds a write that bypassed the log', async () => {
    expect(
      await honest.verify(TYPE, 'actor:1', {
        stored: { exists: true, value: { hp: 4 }, version: 5 },
      }),
    ).toMatchObject({ ok: true })
    for (const stored of [
      { exists: true, value: { hp: 5 } },
      { exists: true, value: { hp: 4 }, version: 6 },
      { exists: false },
    ] as const) {
      expect(await honest.verify(TYPE, 'actor:1', { stored })).toMatchObject({
        ok: false,
        version: 6,
        reason: 'untracked_write',
      })
    }
    expect(
      await honest.verify(TYPE, 'actor:none', { stored: { exists: true, value: {} } }),
    ).toMatchObject({ reason: 'untracked_write', version: 1 })
  })
})

describe('checkpoints catch what a chain cannot see', () => {
  const base = createMemoryChangeLog()
  const key = 'k'.repeat(32)
  const honest = createStateTracker({ log: base, systemId: 's', checkpointKey: key })
  beforeAll(async () => {
    for (let i = 1; i <= 4; i++) await chain(honest, `actor:${i}`, 3)
  })

  it('verifies an honest log, also after later appends, and reports progress', async () => {
    const progress: number[] = []
    const cp = await honest.checkpoint({ batch: 5, onProgress: (p) => progress.push(p.records) })
    expect(cp).toMatchObject({
      records: 12,
      entities: 4,
      signature: expect.stringMatching(/^[0-9a-f]{64}$/),
    })
    expect(progress).toEqual([5, 10, 12])
    await chain(honest, 'actor:5', 2)
    await honest.trackChange({
      entityType: TYPE,
      entityId: 'actor:1',
      changeType: 'delete',
      userId: 'u',
    })
    expect(await honest.verifyCheckpoint(cp, { batch: 7 })).toEqual({
      ok: true,
      records: 12,
      entities: 4,
    })
  })

  it('finds a deleted tail, a tail rewritten with a valid chain, and a forged checkpoint', async () => {
    const cp = await honest.checkpoint()
    const tail = (rs: ChangeRecord[]) =>
      rs.filter((r) => !(r.entityId === 'actor:2' && r.version === 3))
    const rewritten = (rs: ChangeRecord[]) =>
      rs.map((r) =>
        r.entityId === 'actor:3' && r.version === 3 ? rehash({ ...r, newValue: { hp: 1000 } }) : r,
      )
    const verifyWith = (forge: (rs: ChangeRecord[]) => ChangeRecord[]) =>
      createStateTracker({ log: forged(base, forge), checkpointKey: key }).verifyCheckpoint(cp)
    // each entity's chain still verifies: only the checkpoint sees these
    expect(
      await createStateTracker({ log: forged(base, tail) }).verify(TYPE, 'actor:2'),
    ).toMatchObject({ ok: true })
    expect(
      await createStateTracker({ log: forged(base, rewritten) }).verify(TYPE, 'actor:3'),
    ).toMatchObject({ ok: true })
    expect(await verifyWith(tail)).toMatchObject({ ok: false, reason: 'record_count' })
    expect(await verifyWith(rewritten)).toMatchObject({ ok: false, reason: 'digest' })
    // a valid-looking checkpoint of another history
    const other = createStateTracker({
      log: createMemoryChangeLog(),
      systemId: 's',
      checkpointKey: key,
    })
    for (let i = 1; i <= 4; i++) await chain(other, `actor:${i}`, 3)
    await chain(other, 'actor:5', 2)
    await other.trackChange({
      entityType: TYPE,
      entityId: 'actor:1',
      changeType: 'update',
      newValue: { hp: 7 },
      userId: 'u',
    })
    const foreign = await other.checkpoint()
    expect({ records: foreign.records, entities: foreign.entities }).toEqual({
      records: cp.records,
      entities: cp.entities,
    })
    expect(await honest.verifyCheckpoint(foreign)).toMatchObject({ ok: false, reason: 'digest' })
    // an altered field without the key, and an unsigned checkpoint
    expect(await honest.verifyCheckpoint({ ...cp, records: cp.records - 1 })).toMatchObject({
      ok: false,
      reason: 'signature',
    })
    const { signature: _, ...unsigned } = cp
    expect(await honest.verifyCheckpoint(unsigned)).toMatchObject({
      ok: false,
      reason: 'signature',
    })
    // without a key, the digest still catches a forged one
    const unkeyed = createStateTracker({ log: base })
    expect(await unkeyed.verifyCheckpoint({ ...unsigned, digest: 'f'.repeat(64) })).toMatchObject({
      ok: false,
      reason: 'digest',
    })
    await expect(unkeyed.verifyCheckpoint({ ...unsigned, digest: 'nope' })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
  })
})

for (const [name, open] of [
  ['postgres', postgresLog],
  ['pglite', pgliteLog],
] as const) {
  describe(`forgeries made with SQL on the table (${name})`, () => {
    let t: TestLog
    let tracker: StateTracker
    beforeAll(async () => {
      t = await open()
      tracker = createStateTracker({ log: t.log, systemId: 's' })
      for (const id of ['actor:a', 'actor:b', 'actor:c', 'actor:d']) await chain(tracker, id, 4)
    })
    afterAll(async () => {
      await t?.close()
    })
    const sql = (q: string, ...p: unknown[]) => t.sql?.(q, ...p)

    it('finds edited values, swapped versions and deleted rows', async () => {
      const cp = await tracker.checkpoint()
      await sql(
        `UPDATE ac_state_changes SET new_value = '{"hp":99}' WHERE entity_id = 'actor:a' AND version = 2`,
      )
      expect(await tracker.verify(TYPE, 'actor:a')).toMatchObject({
        ok: false,
        version: 2,
        reason: 'hash_mismatch',
      })
      await sql(
        `UPDATE ac_state_changes SET version = 100 WHERE entity_id = 'actor:b' AND version = 2`,
      )
      await sql(
        `UPDATE ac_state_changes SET version = 2 WHERE entity_id = 'actor:b' AND version = 3`,
      )
      await sql(
        `UPDATE ac_state_changes SET version = 3 WHERE entity_id = 'actor:b' AND version = 100`,
      )
      expect(await tracker.verify(TYPE, 'actor:b')).toMatchObject({
        ok: false,
        version: 2,
        reason: 'hash_mismatch',
      })
      await sql(`DELETE FROM ac_state_changes WHERE entity_id = 'actor:c' AND version = 2`)
      expect(await tracker.verify(TYPE, 'actor:c')).toMatchObject({
        ok: false,
        version: 2,
        reason: 'version_gap',
      })
      await sql(`DELETE FROM ac_state_changes WHERE entity_id = 'actor:d' AND version = 4`)
      expect(await tracker.verify(TYPE, 'actor:d')).toMatchObject({
        ok: true,
        head: { version: 3 },
      })
      expect(await tracker.verifyCheckpoint(cp)).toMatchObject({ ok: false })
    })
  })
}
