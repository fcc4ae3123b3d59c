import { InvalidOptionError } from '@actor-cache/core'
import { createPrismaChangeLog, type PrismaChangeLog } from './change-log.js'
import { createPrismaDeadLetters, type PrismaDeadLetters } from './dead-letters.js'
import type { PrismaClient } from './generated/prisma/client.js'
import { migrate } from './migrate.js'
import { openPglite } from './open-pglite.js'
import { createPrismaStore, type PrismaStoreOptions, type PrismaTier } from './prisma-tier.js'

/** Options of {@link openEmbeddedStore}. */
export interface EmbeddedStoreOptions {
  /** Directory PGlite keeps its data in. @default none: in memory, gone with the process */
  dataDir?: string
  /** Options of the store (TTL, codec, timeout, tombstone life); `prisma` is the embedded one. */
  store?: Omit<PrismaStoreOptions, 'prisma'>
}

/**
 * An embedded PostgreSQL (PGlite) with the store's tables, and everything a single-process cache
 * needs from it. It created all of it, so its `close()` closes all of it.
 */
export interface EmbeddedStore {
  /** The client on the embedded database, for your own queries. Do not disconnect it yourself. */
  readonly prisma: PrismaClient
  /** The store: give it to `createTieredCache` as `l3`, the store of record of every namespace. */
  readonly store: PrismaTier
  /** Where write-behind writes the database refuses for good go (`deadLetters` of the cache). */
  readonly deadLetters: PrismaDeadLetters
  /** A change log on the same database; it reads values with `store.changeSerializer`. */
  readonly changeLog: PrismaChangeLog
  /** Closes the store and the client, which closes PGlite. Close the cache using it first. */
  close(): Promise<void>
}

/**
 * Embedded mode in one call: opens PGlite (in memory, or in `dataDir`), applies the migrations,
 * and creates the store, dead-letter sink and change log on it.
 * @example
 * const embedded = await openEmbeddedStore({ dataDir: './data' })
 * const cache = createTieredCache({ config, l1, l3: embedded.store, deadLetters: embedded.deadLetters })
 * // ...
 * await cache.close()
 * await embedded.close()
 * @throws {InvalidOptionError} for bad options, before PGlite is opened
 */
export async function openEmbeddedStore(
  options: EmbeddedStoreOptions = {},
): Promise<EmbeddedStore> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', `must be an object, got ${String(options)}`)
  }
  const { dataDir, store: storeOptions = {} } = options
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir === '')) {
    throw new InvalidOptionError('dataDir', `must be a non-empty path, got ${String(dataDir)}`)
  }
  if (typeof storeOptions !== 'object' || storeOptions === null) {
    throw new InvalidOptionError('store', `must be an object, got ${String(storeOptions)}`)
  }
  if ('prisma' in storeOptions) {
    throw new InvalidOptionError('store.prisma', 'is the embedded client: leave it out')
  }
  const prisma = await openPglite(dataDir)
  let store: PrismaTier
  try {
    await migrate(prisma)
    store = createPrismaStore({ ...storeOptions, prisma })
  } catch (error) {
    await prisma.$disconnect()
    throw error
  }
  const deadLetters = createPrismaDeadLetters({ prisma })
  // the log reads back the change values the store writes
  const changeSerializer = storeOptions.changeSerializer
  const changeLog = createPrismaChangeLog(
    changeSerializer === undefined ? { prisma } : { prisma, serializer: changeSerializer },
  )
  let closing: Promise<void> | undefined
  return {
    prisma,
    store,
    deadLetters,
    changeLog,
    close() {
      closing ??= (async () => {
        try {
          await store.close()
        } finally {
          await prisma.$disconnect()
        }
      })()
      return closing
    },
  }
}
