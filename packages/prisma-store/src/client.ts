/**
 * `@actor-cache/prisma-store/client`: a PrismaClient generated for this package's tables, and two
 * ways to open one with a driver adapter: {@link connectPostgres} (`@prisma/adapter-pg`) and
 * {@link openPglite} (embedded, `@electric-sql/pglite` with `pglite-prisma-adapter`), and
 * {@link openEmbeddedStore}, which opens PGlite with the store, dead letters and change log on it
 * in one call. Install the
 * adapter you use: both are optional peers. Either client is closed with `$disconnect()`. Your own
 * generated client works with the store just as well.
 */
export { connectPostgres, type PostgresClientOptions } from './connect-postgres.js'
export {
  type EmbeddedStore,
  type EmbeddedStoreOptions,
  openEmbeddedStore,
} from './embedded-store.js'
export { PrismaClient } from './generated/prisma/client.js'
export { openPglite } from './open-pglite.js'
