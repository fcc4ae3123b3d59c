import { createPrismaStore, migrate } from '@actor-cache/prisma-store'
import { openPglite } from '@actor-cache/prisma-store/client'

const prisma = await openPglite() // in memory; openPglite('./data') keeps it in a directory
try {
  await migrate(prisma)
  const actors = createPrismaStore({ prisma }).namespace<{ hp: number }>('primary_core')
  await actors.set('actor:123', { hp: 100 }, { version: 7 })
  console.log(await actors.get('actor:123'))
} finally {
  await prisma.$disconnect() // also closes the PGlite database that openPglite opened
}
