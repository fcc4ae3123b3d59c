import type { ChangeLog } from '@actor-cache/core'
import { createPrismaChangeLog } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker } from '../src/index.js'
import { DATABASE_URL, openDatabase, type TestDatabase } from './logs.js'
import { startWireCut, type WireCut } from './wire-cut.js'

describe('a retry after a lost reply returns the first result (postgres)', () => {
  let db: TestDatabase
  let proxy: WireCut
  let client: PrismaClient
  beforeAll(async () => {
    db = await openDatabase('postgres')
    const url = new URL(DATABASE_URL)
    proxy = await startWireCut({ host: url.hostname, port: Number(url.port || 5432) })
    const schema = (
      await db.prisma.$queryRawUnsafe<{ s: string }[]>('SELECT current_schema() AS s')
    )[0]?.s
    url.host = proxy.address
    client = await connectPostgres(url.toString(), { max: 1, ...(schema ? { schema } : {}) })
  })
  afterAll(async () => {
    await client?.$disconnect()
    await proxy?.close()
    await db?.close()
  })

  it('commits, loses the reply, and the retry with the same id logs nothing new', async () => {
    const log = createPrismaChangeLog({ prisma: client })
    // cut the connection when the append's statement (and its commit) is answered
    const cutting: ChangeLog = {
      ...log,
      head: (t, i) => log.head(t, i),
      query: (q) => log.query(q),
      history: (t, i) => log.history(t, i),
      readFeed: (c, l) => log.readFeed(c, l),
      append: (records) => {
        proxy.arm()
        return log.append(records)
      },
    }
    const change = {
      id: 'change-lost-reply-1',
      entityType: 'primary_core',
      entityId: 'actor:1',
      changeType: 'create',
      newValue: { level: 1, hp: 100 },
      userId: 'user:1',
      systemId: 'api',
    } as const
    const first = createStateTracker({ log: cutting })
    const cut = proxy.cut()
    const lost = await first.trackChange(change).then(
      () => undefined,
      (error: unknown) => error,
    )
    await cut
    expect(lost).toBeInstanceOf(Error)
    // the change committed although its caller saw an error
    const committed = await createStateTracker({
      log: createPrismaChangeLog({ prisma: db.prisma }),
    }).history('primary_core', 'actor:1')
    expect(committed.map((r) => r.id)).toEqual([change.id])
    // the retry (same id, through the same client, reconnected) returns what was logged
    const retry = createStateTracker({ log })
    const again = await retry.trackChange(change)
    expect(again).toMatchObject({ id: change.id, version: 1, hash: committed[0]?.hash })
    expect(await retry.history('primary_core', 'actor:1')).toHaveLength(1)
    expect((await retry.verify('primary_core', 'actor:1')).ok).toBe(true)
  })
})
