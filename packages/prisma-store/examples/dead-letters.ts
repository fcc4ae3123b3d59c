import type { QueuedWrite } from '@actor-cache/core'
import { createPrismaDeadLetters, migrate } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'

const url = process.env.DATABASE_URL
if (url === undefined) throw new Error('set DATABASE_URL to a PostgreSQL connection string')

const prisma = await connectPostgres(url)
try {
  await migrate(prisma)
  const deadLetters = createPrismaDeadLetters({ prisma })
  // a write-behind write the database refused for good, as it was queued
  const write: QueuedWrite = {
    namespace: 'primary_core',
    key: 'actor:123',
    op: 'set',
    value: { name: 'a name longer than the column allows' },
    version: 8,
    expiresAt: null,
    tags: [],
    enqueuedAt: Date.now() - 60_000,
  }
  await deadLetters.add([
    {
      namespace: write.namespace,
      key: write.key,
      write,
      error: 'value too long for type character varying(10)',
      attempts: 5,
      firstSeen: write.enqueuedAt,
      lastSeen: Date.now(),
    },
  ])
  const letters = await deadLetters.list({ namespace: 'primary_core', limit: 50 }) // oldest first
  console.log(letters.map((l) => `${l.key} v${l.write.version}: ${l.error}`))
  // ...replay or discard them, then:
  console.log(await deadLetters.remove(letters.map((l) => l.id))) // how many were removed
} finally {
  await prisma.$disconnect()
}
