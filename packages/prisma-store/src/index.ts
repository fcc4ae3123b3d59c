export {
  createPrismaChangeLog,
  PrismaChangeLog,
  type PrismaChangeLogOptions,
} from './change-log.js'
export { isUnavailable } from './classify-error.js'
export {
  createPrismaDeadLetters,
  PrismaDeadLetters,
  type PrismaDeadLettersOptions,
} from './dead-letters.js'
export {
  listMigrations,
  type MigrateResult,
  type Migration,
  migrate,
  splitStatements,
} from './migrate.js'
export { PrismaStore } from './prisma-store.js'
export { createPrismaStore, type PrismaStoreOptions, PrismaTier } from './prisma-tier.js'
export type { PrismaLike, PrismaTransaction } from './sql.js'
