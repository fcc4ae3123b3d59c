import { PrismaClient } from './generated/prisma/client.js'

/**
 * A PrismaClient on an embedded PGlite database (PostgreSQL in WebAssembly, through
 * `pglite-prisma-adapter`): in memory, or persisted in `dataDir`.
 *
 * The client owns the database it opened: `await prisma.$disconnect()` closes the PGlite
 * instance too, and then the process has nothing of it left open (without it, PGlite keeps the
 * process alive for seconds). The client cannot be used after that; open another. To share one
 * PGlite instance between clients, create them yourself:
 * `new PrismaClient({ adapter: new PrismaPGlite(db) })`, and close `db` when all are done.
 */
export async function openPglite(dataDir?: string): Promise<PrismaClient> {
  const [{ PGlite }, { PrismaPGlite }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('pglite-prisma-adapter'),
  ])
  const db = dataDir === undefined ? new PGlite() : new PGlite(dataDir)
  // A class per database rather than a private field: Prisma's constructor returns a proxy, on
  // which private fields cannot be read.
  class PgliteClient extends PrismaClient {
    override async $disconnect(): Promise<void> {
      try {
        await super.$disconnect()
      } finally {
        if (!db.closed) await db.close()
      }
    }
  }
  return new PgliteClient({ adapter: new PrismaPGlite(db) })
}
