import { mkdir } from 'node:fs/promises'
import {
  type CacheConfig,
  type CacheTier,
  createLocalBusHub,
  createLocalLockProvider,
  createMemoryWriteQueue,
  type InvalidationBus,
  type LockProvider,
  parseCacheConfig,
  type QueuedWrite,
  type WriteQueue,
} from '@actor-cache/core'
import {
  createPrismaChangeLog,
  createPrismaDeadLetters,
  createPrismaStore,
  migrate,
  type PrismaChangeLog,
  type PrismaDeadLetters,
} from '@actor-cache/prisma-store'
import { connectPostgres, openEmbeddedStore } from '@actor-cache/prisma-store/client'
import {
  connectRedis,
  createRedisBus,
  createRedisLockProvider,
  createRedisStore,
  createRedisWriteQueue,
  type RedisTier,
  type SingleClient,
} from '@actor-cache/redis'
import type { FieldEncryption } from './encryption.js'
import { reason, redactUrl, step } from './startup-error.js'

/** The store of record (L3) and what lives beside it. */
export interface RecordTier {
  /** `pglite <dir>` or `postgres <url>`, for people. */
  readonly describe: string
  /** The store (a Prisma tier), its encrypted fields decrypted when the settings encrypt some. */
  readonly store: CacheTier
  readonly deadLetters: PrismaDeadLetters
  /** The change log on the same database: tracked writes append to it in their transaction. */
  readonly changeLog: PrismaChangeLog
  close(): Promise<void>
}

/** The cross-instance parts: L2, bus, lock and write queue, from Redis or in-process. */
export interface SharedParts {
  readonly describe: string
  /** Redis as L2, its encrypted fields decrypted when the settings encrypt some. */
  readonly l2: CacheTier | undefined
  /** The Redis tier itself, unwrapped (its circuit breaker's state). */
  readonly redisTier: RedisTier | undefined
  readonly bus: InvalidationBus
  readonly lock: LockProvider
  readonly queue: WriteQueue<QueuedWrite>
  /** The Redis client, when there is one (rate limits, health's INFO). */
  readonly redis: SingleClient | undefined
  readonly prefix: string | undefined
  close(): Promise<void>
}

/** Embedded PGlite in `dataDir` (created if missing), migrated; `encryption` seals fields and the log. */
export async function openEmbeddedRecord(
  dataDir: string,
  encryption?: FieldEncryption,
): Promise<RecordTier> {
  const embedded = await step(
    (e) => `the embedded database in ${dataDir} cannot be opened: ${reason(e)}`,
    `make sure no other demo server uses ${dataDir} (or set DATA_DIR to another directory); delete the directory to start with a new database`,
    async () => {
      await mkdir(dataDir, { recursive: true })
      return openEmbeddedStore(
        encryption === undefined
          ? { dataDir }
          : { dataDir, store: { changeSerializer: encryption.changeSerializer } },
      )
    },
  )
  return {
    describe: `PGlite (embedded PostgreSQL) in ${dataDir}`,
    store: encryption?.wrap(embedded.store) ?? embedded.store,
    deadLetters: embedded.deadLetters,
    changeLog: embedded.changeLog,
    close: () => embedded.close(),
  }
}

/** PostgreSQL at `url` (a `?schema=` selects the schema), migrated; `encryption` as above. */
export async function openPostgresRecord(
  url: string,
  encryption?: FieldEncryption,
): Promise<RecordTier> {
  const shown = redactUrl(url)
  const prisma = await step(
    (e) => `DATABASE_URL is not a usable PostgreSQL connection string (${shown}): ${reason(e)}`,
    'set DATABASE_URL to e.g. postgresql://postgres@127.0.0.1:5432/postgres, or unset it to use the embedded database',
    () => connectPostgres(url),
  )
  try {
    await step(
      (e) => `PostgreSQL at ${shown} cannot be used: ${reason(e)}`,
      'start PostgreSQL (and create the database and schema the URL names), or unset DATABASE_URL to use the embedded database',
      () => migrate(prisma),
    )
  } catch (error) {
    await prisma.$disconnect()
    throw error
  }
  const serializer = encryption?.changeSerializer
  const store = createPrismaStore(
    serializer === undefined ? { prisma } : { prisma, changeSerializer: serializer },
  )
  return {
    describe: `PostgreSQL at ${shown}`,
    store: encryption?.wrap(store) ?? store,
    deadLetters: createPrismaDeadLetters({ prisma }),
    changeLog: createPrismaChangeLog(
      serializer === undefined ? { prisma } : { prisma, serializer },
    ),
    async close() {
      try {
        await store.close()
      } finally {
        await prisma.$disconnect()
      }
    },
  }
}

/** In-process bus, lock and queue: one instance, no Redis. */
export function openLocalParts(): SharedParts {
  const bus = createLocalBusHub().connect()
  const lock = createLocalLockProvider()
  const queue = createMemoryWriteQueue()
  return {
    describe: 'none (in-process invalidation bus, lock and write-behind queue)',
    l2: undefined,
    redisTier: undefined,
    bus,
    lock,
    queue,
    redis: undefined,
    prefix: undefined,
    async close() {
      await Promise.allSettled([queue.close(), lock.close(), bus.close()])
    },
  }
}

/** Redis at `url` as L2 (`encryption` seals fields), with its bus, lock and durable write queue. */
export async function openRedisParts(
  config: CacheConfig,
  url: string,
  encryption?: FieldEncryption,
): Promise<SharedParts> {
  const shown = redactUrl(url)
  const base = config.redis ?? parseCacheConfig({ redis: { url } }).redis
  const redisConfig = { ...base!, url }
  const client = await step(
    (e) => `Redis at ${shown} is unreachable: ${reason(e)}`,
    'start Redis (redis-server), fix REDIS_URL, or unset REDIS_URL to run without Redis',
    () => connectRedis(redisConfig),
  )
  const options = { client, prefix: redisConfig.keyPrefix }
  const l2 = createRedisStore(options)
  const bus = createRedisBus(options)
  const lock = createRedisLockProvider(options)
  const queue = createRedisWriteQueue({ ...options, name: 'demo-server' })
  return {
    describe: `Redis at ${shown} (key prefix "${redisConfig.keyPrefix}")`,
    l2: encryption?.wrap(l2) ?? l2,
    redisTier: l2,
    bus,
    lock,
    queue,
    redis: client,
    prefix: redisConfig.keyPrefix,
    async close() {
      await Promise.allSettled([queue.close(), bus.close(), lock.close(), l2.close()])
      await client.close()
    },
  }
}
