import { createPrismaStore, migrate } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'

// e.g. postgresql://app@127.0.0.1:5432/app?schema=cache (the schema must exist; default public)
const url = process.env.DATABASE_URL
if (url === undefined) throw new Error('set DATABASE_URL to a PostgreSQL connection string')

const prisma = await connectPostgres(url)
try {
  await migrate(prisma) // idempotent; records itself in _prisma_migrations
  const l3 = createPrismaStore({ prisma })
  const actors = l3.namespace<{ hp: number }>('primary_core')
  await actors.set('actor:123', { hp: 100 }, { version: 7 }) // applied unless a newer version is stored
  console.log(await actors.get('actor:123'))
  await l3.prune() // deletes expired rows in bounded batches
} finally {
  await prisma.$disconnect() // closes the connection pool: nothing is left open
}
