import type { WriteStrategy, WriteTracking } from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import {
  type CacheAlerts,
  type CacheMetrics,
  createCacheAlerts,
  createCacheMetrics,
  createHealthCheck,
  type HealthCheck,
} from '@actor-cache/metrics'
import {
  createRateLimiter,
  type GuardedCache,
  guardCache,
  type PrincipalView,
  type RateLimiter,
} from '@actor-cache/security'
import { createStateTracker, type StateTracker } from '@actor-cache/state-tracker'
import {
  createTieredCache,
  type NamespacePolicies,
  type TieredCache,
} from '@actor-cache/strategies'
import { type DemoNamespaces, type RESPONSE_NAMESPACE, SYSTEM_ID, TRACKED } from './domain/types.js'
import { type FieldEncryption, openEncryption } from './encryption.js'
import { type CachingSwitch, createCachingSwitch } from './load/caching-switch.js'
import { type ServerSettings, withEncryptedFieldsMasked } from './settings.js'
import {
  openEmbeddedRecord,
  openLocalParts,
  openPostgresRecord,
  openRedisParts,
  type RecordTier,
  type SharedParts,
} from './tiers.js'

/** The demo's cache, typed by its namespaces. */
export type DemoCache = TieredCache<DemoNamespaces>
/** One caller's guarded view of the cache: every call is checked against its roles. */
export type CacheView = PrincipalView<DemoCache>

/** Where the data lives: the services chosen by the environment. */
export interface StackOptions {
  settings: ServerSettings
  /** PGlite's directory when there is no `databaseUrl`. */
  dataDir: string
  /** Redis (L2, bus, lock, queue) when given; in-process parts otherwise. */
  redisUrl?: string | undefined
  /** PostgreSQL as the store of record when given; PGlite in `dataDir` otherwise. */
  databaseUrl?: string | undefined
  /** Where alerts are reported. */
  onAlert?: (line: string) => void
  /** Variables for the encryption keys (`demo.encryption.keyring`). @default process.env */
  env?: Readonly<Record<string, string | undefined>>
}

/** Everything the server composes, and the order to close it in. */
export interface Stack {
  readonly settings: ServerSettings
  /** The cache itself, for the server's own work (computing derived stats after a checked read). */
  readonly cache: DemoCache
  /** The cache behind the access guard: requests use `guarded.as(principal)`. */
  readonly guarded: GuardedCache<DemoCache>
  /** The guard's rate limits (`demo.rate_limit`); the response cache charges its answers too. */
  readonly rateLimiter: RateLimiter | undefined
  /** The load generator's switch: off, the guarded cache's reads go to the store of record. */
  readonly caching: CachingSwitch
  readonly l1: MemCache
  readonly record: RecordTier
  readonly shared: SharedParts
  readonly metrics: CacheMetrics
  readonly health: HealthCheck
  readonly alerts: CacheAlerts | undefined
  /** The state tracker over the record's change log: audit, verification, rollback. */
  readonly tracker: StateTracker
  /** The cache's `tracking` option: seeding writes through it too. */
  readonly tracking: WriteTracking
  /** The encryption of `demo.encryption`, when the file has one. */
  readonly encryption: FieldEncryption | undefined
  /** The tiers in use, for people (`/stats`, the start-up banner). */
  readonly tiers: { l1: string; l2: string; record: string }
  /** Closes everything this stack opened, the cache first. */
  close(): Promise<void>
}

async function openRecord(
  options: StackOptions,
  encryption: FieldEncryption | undefined,
): Promise<RecordTier> {
  return options.databaseUrl === undefined
    ? openEmbeddedRecord(options.dataDir, encryption)
    : openPostgresRecord(options.databaseUrl, encryption)
}

async function openShared(
  options: StackOptions,
  encryption: FieldEncryption | undefined,
): Promise<SharedParts> {
  return options.redisUrl === undefined
    ? openLocalParts()
    : openRedisParts(options.settings.cache, options.redisUrl, encryption)
}

/** Opens the tiers and ports the environment asks for and composes the cache on them. */
export async function openStack(options: StackOptions): Promise<Stack> {
  const settings = withEncryptedFieldsMasked(options.settings)
  const config = settings.cache
  const encryption =
    settings.demo.encryption === undefined
      ? undefined
      : openEncryption(settings.demo.encryption, options.env ?? process.env)
  const shared = await openShared(options, encryption)
  let record: RecordTier
  try {
    record = await openRecord(options, encryption)
  } catch (error) {
    await shared.close()
    throw error
  }
  const l1 = createMemCache(config.memCache)
  const tracker = createStateTracker({
    log: record.changeLog,
    systemId: SYSTEM_ID,
    sensitiveFields: settings.demo.audit.sensitiveFields,
  })
  const tracking = tracker.writeTracking(TRACKED)
  const cache = createTieredCache<DemoNamespaces>({
    config,
    l1,
    l2: shared.l2,
    // no L3 tier: the record is the store of record of each namespace but the response cache's
    namespaces: recordPolicies(record),
    bus: shared.bus,
    lock: shared.lock,
    queue: shared.queue,
    deadLetters: record.deadLetters,
    // every write and delete of these is logged by the record in the write's transaction
    tracking,
  })
  const limit = settings.demo.rateLimit
  const rateLimiter =
    limit === undefined
      ? undefined
      : createRateLimiter({
          ...limit,
          ...(shared.redis === undefined
            ? {}
            : { redis: shared.redis, keyPrefix: `${shared.prefix}:rl` }),
        })
  const caching = createCachingSwitch(cache, record.store)
  const guarded = guardCache(caching.cache, {
    policy: settings.demo.policy,
    config,
    ...(rateLimiter === undefined ? {} : { rateLimiter }),
  })
  const namespaces = Object.keys(config.strategies)
  for (const name of namespaces) cache.namespace(name as keyof DemoNamespaces)
  const metrics = createCacheMetrics({ namespaces, cache, l1, queue: shared.queue })
  const strategies = [
    ...new Set(Object.values(config.strategies).map((s) => s.strategy)),
  ] as WriteStrategy[]
  const health = createHealthCheck({
    l1,
    l2: shared.l2,
    record: record.store,
    bus: shared.bus,
    queue: shared.queue,
    strategies,
  })
  const alerts =
    config.monitoring === undefined
      ? undefined
      : createCacheAlerts({ metrics, monitoring: config.monitoring }).start()
  alerts?.on((a) => options.onAlert?.(`alert ${a.name} ${a.state}: ${a.summary}`))
  let closing: Promise<void> | undefined
  return {
    settings,
    cache,
    guarded,
    rateLimiter,
    caching,
    l1,
    record,
    shared,
    metrics,
    health,
    alerts,
    tracker,
    tracking,
    encryption,
    tiers: { l1: 'memory (memcache)', l2: shared.describe, record: record.describe },
    close() {
      closing ??= closeAll([
        () => alerts?.close(),
        () => health.close(),
        () => metrics.close(),
        () => cache.close(),
        () => l1.close(),
        () => shared.close(),
        () => record.close(),
      ])
      return closing
    },
  }
}

/**
 * The record's store as the store of record of every namespace but the response cache's, whose
 * entries live in L1 (and L2) only: an L3 tier would make the database a cache tier of them.
 */
function recordPolicies(record: RecordTier): NamespacePolicies<DemoNamespaces> {
  const recorded: Exclude<keyof DemoNamespaces, typeof RESPONSE_NAMESPACE>[] = [
    'primary_core',
    'flexible_stats',
    'derived_stats',
    'config',
  ]
  return Object.fromEntries(
    recorded.map((name) => [
      name,
      { record: record.store.namespace(name, { defaultTtl: Infinity }) },
    ]),
  )
}

/** Runs every closer in order, even after one fails; rethrows the first failure. */
async function closeAll(steps: readonly (() => unknown)[]): Promise<void> {
  let failure: unknown
  for (const close of steps) {
    try {
      await close()
    } catch (error) {
      failure ??= error
    }
  }
  if (failure !== undefined) throw failure
}
