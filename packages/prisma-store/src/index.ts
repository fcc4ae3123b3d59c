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
export {
  createPrismaStore,
  PrismaStore,
  type PrismaStoreOptions,
  PrismaTier,
} from './prisma-store.js'
export type { PrismaLike, PrismaTransaction } from './sql.js'
