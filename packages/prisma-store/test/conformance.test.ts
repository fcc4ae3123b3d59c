import { runStoreConformance } from '@actor-cache/core/testing'
import { afterAll } from 'vitest'
import { createPrismaStore, migrate } from '../src/index.js'
import { connectedPostgres, pglite, postgres, type TestDb } from './db.js'

const dbs: TestDb[] = []
afterAll(async () => {
  for (const db of dbs) await db.drop()
})

for (const [name, open] of [
  ['postgres', postgres],
  ['postgres, connectPostgres', connectedPostgres],
  ['pglite', pglite],
] as const) {
  runStoreConformance({
    name: `prisma-store (${name})`,
    versionedDeletes: true,
    async createTier() {
      const db = await open()
      dbs.push(db)
      await migrate(db.prisma)
      return createPrismaStore({ prisma: db.prisma })
    },
  })
}
