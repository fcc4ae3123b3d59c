/**
 * A value the serializer cannot store fails before any I/O with `SerializationError`, whose
 * `path` says where, as the in-memory tier's does.
 */
import type { ChangeRecord, QueuedWrite } from '@actor-cache/core'
import { SerializationError } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createPrismaChangeLog,
  createPrismaDeadLetters,
  createPrismaStore,
  migrate,
} from '../src/index.js'
import { postgres, type TestDb } from './db.js'
import { rejection } from './rejection.js'

function cyclic(): { stats: unknown[] } {
  const owner: { name: string; self?: unknown } = { name: 'a' }
  owner.self = owner
  return { stats: [1, new Map([['owner', owner]])] }
}
const PATH = '$.stats[1].<value 0>.self'

const serializationError = (work: Promise<unknown>): Promise<SerializationError> =>
  rejection(work, SerializationError)

describe('SerializationError of a cyclic value (postgres)', () => {
  let db: TestDb
  beforeAll(async () => {
    db = await postgres()
    await migrate(db.prisma)
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('names the path in the store, on set and setMany', async () => {
    const store = createPrismaStore({ prisma: db.prisma }).namespace('primary_core')
    const single = await serializationError(store.set('actor:1', cyclic()))
    expect(single).toMatchObject({ code: 'E_SERIALIZATION', path: PATH })
    expect(single.message).toBe(`cannot store a value with a cycle (at ${PATH})`)
    const batch = await serializationError(
      store.setMany([{ key: 'actor:2', value: cyclic(), version: 1 }]),
    )
    expect(batch.path).toBe(PATH)
    expect(await store.exists('actor:1')).toBe(false)
  })

  it('names the path in the change log and the dead letters', async () => {
    const change: ChangeRecord = {
      id: 'c1',
      entityType: 'primary_core',
      entityId: 'actor:1',
      changeType: 'create',
      oldValue: null,
      newValue: cyclic(),
      timestamp: Date.now(),
      userId: 'u',
      systemId: 's',
      version: 1,
    }
    const log = await serializationError(
      createPrismaChangeLog({ prisma: db.prisma }).append([change]),
    )
    expect(log.path).toBe(PATH)
    const write: QueuedWrite = {
      namespace: 'primary_core',
      key: 'actor:1',
      op: 'set',
      value: cyclic(),
      version: 1,
      expiresAt: null,
      tags: [],
      enqueuedAt: 0,
    }
    const letters = createPrismaDeadLetters({ prisma: db.prisma })
    const letter = await serializationError(
      letters.add([
        {
          namespace: 'primary_core',
          key: 'actor:1',
          write,
          error: 'e',
          attempts: 1,
          firstSeen: 0,
          lastSeen: 0,
        },
      ]),
    )
    expect(letter.path).toBe(`$.value${PATH.slice(1)}`)
  })
})
