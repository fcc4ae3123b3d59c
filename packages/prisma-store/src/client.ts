/**
 * `@actor-cache/prisma-store/client`: a PrismaClient generated for this package's tables, and two
 * ways to open one with a driver adapter: {@link connectPostgres} (`@prisma/adapter-pg`) and
 * {@link openPglite} (embedded, `@electric-sql/pglite` with `pglite-prisma-adapter`). Install the
 * adapter you use: both are optional peers. Either client is closed with `$disconnect()`. Your own
 * generated client works with the store just as well.
 */
export { connectPostgres, type PostgresClientOptions } from './connect-postgres.js'
export { PrismaClient } from './generated/prisma/client.js'
export { openPglite } from './open-pglite.js'
