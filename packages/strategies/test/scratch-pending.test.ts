import type { QueuedWrite } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, type PrismaTier } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore, createRedisWriteQueue } from '@actor-cache/redis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createTieredCache } from '../src/index.js'
import { dropPrefix, postgres, redis, type TestDb, uid } from './helpers.js'

let db: TestDb
let client: AnyRedisClient
let l3: PrismaTier
const prefix = `scr${uid()}`
beforeAll(async () => {
  db = await postgres()
  client = await redis()
  l3 = createPrismaStore({ prisma: db.prisma })
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await client.close()
  await db?.drop()
})

it('shared queue: A keeps serving its own write after B persisted it and a newer write landed', async () => {
  const l2 = createRedisStore({ client, prefix })
  const mk = (name: string) =>
    createTieredCache({
      l1: createMemCache(),
      l2,
      l3,
      queue: createRedisWriteQueue<QueuedWrite>({ client, prefix, name: 'wb', consumer: name }),
      writeBehind: { autoStart: false, linger: 0 },
      namespaces: { n1: { strategy: 'write_behind', ttl: 3_600_000 } },
    })
  const A = mk('a')
  const B = mk('b')
  const a = A.namespace<number>('n1')
  const b = B.namespace<number>('n1')
  const r1 = await a.set('k', 1)
  expect(await B.flush()).toBe(1) // B's consumer persists A's write
  await new Promise((r) => setTimeout(r, 2))
  const r2 = await b.set('k', 2)
  expect(await B.flush()).toBe(1)
  console.log('versions', r1, r2, await l3.namespace('n1').get('k'))
  await A.invalidate({ namespace: 'n1', keys: ['k'] })
  const got = await a.get('k')
  const inL2 = await l2.namespace('n1').get('k')
  const C = mk('c')
  const fromC = await C.namespace<number>('n1').get('k')
  console.log('A reads', got, 'L2 now', inL2?.value, inL2?.version, 'fresh C reads', fromC)
  expect(got).toBe(2)
  await A.close(); await B.close(); await C.close()
})

it('write-behind: create-if-absent (expectedVersion 0) right after delete', async () => {
  const c = createTieredCache({
    l1: createMemCache(),
    l2: createRedisStore({ client, prefix: prefix + 'x' }),
    l3,
    writeBehind: { autoStart: false },
    namespaces: { n2: { strategy: 'write_behind' } },
  })
  const t = c.namespace<number>('n2')
  await t.set('k', 1)
  await c.flush()
  await t.delete('k')
  expect(await t.get('k')).toBeUndefined()
  let err: unknown
  try { await t.set('k', 5, { expectedVersion: 0 }) } catch (e) { err = e }
  console.log('CAS 0 after delete:', err)
  await c.flush()
  let err2: unknown
  try { console.log(await t.set('k', 6, { expectedVersion: 0 })) } catch (e) { err2 = e }
  console.log('CAS 0 after delete + flush:', err2)
  expect(err).toBeUndefined()
  await c.close()
})
