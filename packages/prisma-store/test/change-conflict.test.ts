/**
 * A change for an entity version that another change id holds is a `ConflictError` whose message
 * names the version, the entity and both changes, whichever record of the batch it is.
 */
import { type ChangeRecord, ConflictError } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPrismaChangeLog, createPrismaStore, migrate } from '../src/index.js'
import { postgres, type TestDb } from './db.js'
import { rejection } from './rejection.js'

function change(id: string, entityId: string, version: number): ChangeRecord {
  return {
    id,
    entityType: 'primary_core',
    entityId,
    changeType: version === 1 ? 'create' : 'update',
    oldValue: null,
    newValue: { hp: version },
    timestamp: Date.now(),
    userId: 'u',
    systemId: 's',
    version,
  }
}

const conflict = (work: Promise<unknown>): Promise<ConflictError> => rejection(work, ConflictError)

describe('change-log version conflicts (postgres)', () => {
  let db: TestDb
  beforeAll(async () => {
    db = await postgres()
    await migrate(db.prisma)
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('appending version 2 twice names version 2 and both changes', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    await log.append([change('a1', 'actor:a', 1), change('a2', 'actor:a', 2)])
    const error = await conflict(log.append([change('a2-again', 'actor:a', 2)]))
    expect(error.message).toBe(
      'version conflict: version 2 of primary_core "actor:a" is taken by change "a2", already in the log; change "a2-again" was not appended, nor anything else of its batch',
    )
    expect(error).toMatchObject({
      code: 'E_CONFLICT',
      tier: 'postgres',
      namespace: 'primary_core',
      key: 'actor:a',
      expectedVersion: 1,
      actualVersion: 2,
    })
    expect(error.stack?.split('\n')[0]).toBe(`ConflictError: ${error.message}`)
    // a retry of the same id is still a duplicate, not a conflict
    expect(await log.append([change('a2', 'actor:a', 2)])).toEqual({ appended: 0, duplicates: 1 })
  })

  it('names the record that conflicts, not the first of the batch, and appends none', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    await log.append([change('b1', 'actor:b', 1)])
    const error = await conflict(
      log.append([
        change('b2', 'actor:b', 2),
        change('c1', 'actor:c', 1),
        change('b1x', 'actor:b', 1),
      ]),
    )
    expect(error.message).toContain('version 1 of primary_core "actor:b" is taken by change "b1"')
    expect(error.message).toContain('change "b1x" was not appended')
    expect(error).toMatchObject({ key: 'actor:b', actualVersion: 1 })
    expect((await log.history('primary_core', 'actor:b')).map((r) => r.id)).toEqual(['b1'])
    expect(await log.history('primary_core', 'actor:c')).toEqual([])
  })

  it('names two changes of one batch for the same version before writing anything', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    const error = await conflict(
      log.append([change('d1', 'actor:d', 1), change('d1-other', 'actor:d', 1)]),
    )
    expect(error.message).toContain(
      'version 1 of primary_core "actor:d" is taken by change "d1" of the same batch; change "d1-other" was not appended',
    )
    expect(await log.history('primary_core', 'actor:d')).toEqual([])
  })

  it('setManyWithChanges names the conflict and rolls the writes back', async () => {
    const log = createPrismaChangeLog({ prisma: db.prisma })
    await log.append([change('e1', 'actor:e', 1)])
    const store = createPrismaStore({ prisma: db.prisma }).namespace<{ hp: number }>('primary_core')
    const error = await conflict(
      store.setManyWithChanges(
        [{ key: 'actor:e', value: { hp: 9 }, version: 1 }],
        [change('e1-other', 'actor:e', 1)],
      ),
    )
    expect(error.message).toContain(
      'version 1 of primary_core "actor:e" is taken by change "e1", already in the log; change "e1-other" was not appended',
    )
    expect(await store.get('actor:e')).toBeUndefined()
  })
})
