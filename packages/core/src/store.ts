import type { Codec } from './codec.js'
import { InvalidOptionError } from './errors.js'
import { validateKey, validateNamespace, validateTags } from './keys.js'

/**
 * What every tier stores under a key: the value plus the metadata that lets tiers agree.
 * `expiresAt` is absolute, so copying an entry to another tier keeps its remaining life.
 */
export interface CacheEntry<V = unknown> {
  /** The cached value. Values read from the memory tier are deeply frozen. */
  readonly value: V
  /** Version of this value for its key; starts at 1, only ever grows. */
  readonly version: number
  /** When this version was written (epoch milliseconds). */
  readonly createdAt: number
  /** When the entry stops being served (epoch milliseconds), or `null` for never. */
  readonly expiresAt: number | null
  /** Tags for group invalidation. */
  readonly tags: readonly string[]
}

/** Options of {@link CacheStore.set}. */
export interface SetOptions {
  /**
   * Time to live in milliseconds, a positive number, or `Infinity` for no expiry.
   * Mutually exclusive with `expiresAt`.
   * @default the store's default TTL (none unless configured)
   */
  ttl?: number
  /** Absolute expiry (epoch ms) or `null` for never; used to copy entries between tiers. */
  expiresAt?: number | null
  /**
   * Explicit version (a positive safe integer). The write applies only if no newer version is
   * stored, which makes replays and out-of-order delivery safe.
   * @default the stored version + 1 (1 when absent)
   */
  version?: number
  /**
   * Compare-and-set: write only if the stored version equals this (`0` = key absent); otherwise
   * the store throws `ConflictError`. The new version is `expectedVersion + 1`.
   */
  expectedVersion?: number
  /** Tags attached to the entry. @default [] */
  tags?: readonly string[]
  /** Creation time to record (epoch ms). @default now */
  createdAt?: number
}

/** Outcome of a write. */
export interface SetResult {
  /** False when a newer version was already stored and the write was ignored. */
  readonly applied: boolean
  /** The version stored after the call (the newer one when the write was ignored). */
  readonly version: number
}

/** One item of {@link CacheStore.setMany}. */
export interface SetManyItem<V = unknown> extends SetOptions {
  key: string
  value: V
}

/**
 * The interface every tier implements, bound to one namespace (entity type): get, set with TTL, delete,
 * clear, exists, getTTL, setTTL, plus batch and pattern operations. Every tier implements it;
 * every implementation passes the conformance suite in `@actor-cache/core/testing`.
 *
 * Invalid keys, patterns and options are rejected with typed errors before any I/O.
 * TTLs are milliseconds.
 */
export interface CacheStore<V = unknown> {
  /** Tier name used in events and errors (`memory`, `redis`, `postgres`, ...). */
  readonly tier: string
  /** Namespace every key of this store lives in. */
  readonly namespace: string
  /** The live entry under `key`, or `undefined` when absent or expired. */
  get(key: string): Promise<CacheEntry<V> | undefined>
  /** Entries for `keys`, in the same order; `undefined` where absent. */
  getMany(keys: readonly string[]): Promise<(CacheEntry<V> | undefined)[]>
  /**
   * Stores `value`. A number as third argument is the TTL in milliseconds.
   * @throws {ConflictError} when `expectedVersion` does not match
   */
  set(key: string, value: V, options?: SetOptions | number): Promise<SetResult>
  /** Stores several entries; results are in input order. Validates every item before writing any. */
  setMany(items: readonly SetManyItem<V>[]): Promise<SetResult[]>
  /** Removes `key`; true when something was removed. */
  delete(key: string): Promise<boolean>
  /** Removes `keys`; returns how many existed. */
  deleteMany(keys: readonly string[]): Promise<number>
  /**
   * Removes every key of this namespace matching a glob pattern (`*`, `?`, `[...]`, `\x`).
   * Build patterns from user text with `glob` or `escapeGlob`. Returns how many were removed.
   */
  deletePattern(pattern: string): Promise<number>
  /** Removes every entry of this namespace (and only this namespace); returns how many. */
  clear(): Promise<number>
  /** True when a live entry exists under `key`. */
  exists(key: string): Promise<boolean>
  /** Remaining life in ms, `Infinity` when the entry never expires, `undefined` when absent. */
  getTTL(key: string): Promise<number | undefined>
  /** Sets a new TTL (ms, or `Infinity` to persist); false when the key is absent. */
  setTTL(key: string, ttl: number): Promise<boolean>
}

/**
 * A store that can answer from memory without a promise. In-process tiers (memcache) implement
 * it so a tiered L1 hit costs one map lookup: the tiered cache calls `getSync` first and only
 * enters the async path on a miss. Network tiers do not implement it.
 */
export interface SyncCacheStore<V = unknown> extends CacheStore<V> {
  /** Marks the store as synchronous-capable. */
  readonly sync: true
  /** Like `get`, without a promise. Throws typed errors synchronously. */
  getSync(key: string): CacheEntry<V> | undefined
  /** Like `set`, without a promise. */
  setSync(key: string, value: V, options?: SetOptions | number): SetResult
  /** Like `delete`, without a promise. */
  deleteSync(key: string): boolean
}

/** True when `store` offers the synchronous fast path. */
export function isSyncStore<V>(store: CacheStore<V>): store is SyncCacheStore<V> {
  return (store as Partial<SyncCacheStore<V>>).sync === true
}

/** One item of {@link VersionedDeleteStore.deleteVersions}: remove `key` as of `version`. */
export interface VersionedDelete {
  key: string
  /** The delete's version: a positive safe integer, above the versions it supersedes. */
  version: number
}

/**
 * A store that can order deletes with writes: a versioned delete removes the key only when the
 * stored version is older, and leaves a tombstone that keeps the version for a while, so a write
 * with an older explicit version that arrives later (a replayed or reordered write-behind write)
 * is ignored instead of bringing the key back. A tombstone is absent for every read, `exists`,
 * TTL call and count; a later write gets a version above it. Plain `delete` forgets the key and
 * its tombstone. Stores of record implement this (`@actor-cache/prisma-store`); the tiered cache
 * uses it for write-behind deletes when the record offers it.
 */
export interface VersionedDeleteStore {
  /**
   * Deletes each key whose stored version is older than the given one and remembers that version.
   * Returns how many live entries were removed. Validates every item before any I/O.
   */
  deleteVersions(items: readonly VersionedDelete[]): Promise<number>
}

/** True when `store` offers versioned deletes (tombstones). */
export function hasVersionedDeletes(store: object): store is VersionedDeleteStore {
  return typeof (store as Partial<VersionedDeleteStore>).deleteVersions === 'function'
}

/**
 * Validates the items of a versioned delete before any I/O.
 * @throws {InvalidOptionError} | {InvalidKeyError}
 */
export function validateVersionedDeletes(
  items: readonly VersionedDelete[],
  namespace: string,
): void {
  if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
  const seen = new Set<string>()
  for (const item of items) {
    if (typeof item !== 'object' || item === null)
      throw new InvalidOptionError('items', 'every item must be an object { key, version }')
    validateKey(item.key, namespace)
    if (!isVersion(item.version, 1)) {
      throw new InvalidOptionError(
        'version',
        `must be a positive safe integer, got ${String(item.version)} for key "${item.key}"`,
      )
    }
    if (seen.has(item.key))
      throw new InvalidOptionError('items', `key "${item.key}" appears more than once`)
    seen.add(item.key)
  }
}

/** Per-namespace settings a tier applies to the store it hands out. */
export interface NamespaceOptions {
  /**
   * TTL used when a write gives none (ms, or `Infinity`).
   * @default the tier's default TTL
   */
  defaultTtl?: number
  /**
   * How tiers that store bytes (Redis, Postgres) encode values of this namespace: serializer,
   * then compression and encryption. In-process tiers keep values as (frozen) objects.
   * @default defaultCodec (JSON)
   */
  codec?: Codec
}

/** A tier (memory, Redis, Postgres) that hands out one {@link CacheStore} per namespace. */
export interface CacheTier {
  /** Tier name used in events and errors. */
  readonly tier: string
  /** The store for one namespace. Calling twice with the same name returns an equivalent store. */
  namespace<V = unknown>(name: string, options?: NamespaceOptions): CacheStore<V>
  /** Releases timers and connections the tier owns. */
  close(): Promise<void>
}

/** A write after validation: absolute times, checked version fields, frozen tags. */
export interface ResolvedSet {
  expiresAt: number | null
  createdAt: number
  version: number | undefined
  expectedVersion: number | undefined
  tags: readonly string[]
}

const EMPTY_TAGS: readonly string[] = Object.freeze([])

/**
 * Latest expiry kept as a time (the last millisecond of year 9999, the end of SQL timestamps);
 * expiries beyond it mean never.
 */
export const MAX_EXPIRES_AT = 253_402_300_799_999

const absolute = (at: number): number | null => (at > MAX_EXPIRES_AT ? null : Math.ceil(at))

function isVersion(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min
}

/**
 * Validates a TTL in milliseconds: a positive number or `Infinity`.
 * @throws {InvalidOptionError}
 */
export function validateTtl(ttl: unknown, option = 'ttl'): number {
  if (typeof ttl !== 'number' || Number.isNaN(ttl) || ttl <= 0) {
    throw new InvalidOptionError(
      option,
      `must be a positive number of milliseconds or Infinity, got ${String(ttl)}`,
    )
  }
  return ttl
}

/**
 * Validates and normalises the options of a write. Shared by every store so they reject the
 * same inputs with the same errors, before any I/O.
 * @param defaultTtl TTL to apply when neither `ttl` nor `expiresAt` is given (`Infinity` = none)
 * @throws {InvalidOptionError} | {InvalidKeyError} (tags)
 */
export function resolveSetOptions(
  options: SetOptions | number | undefined,
  defaultTtl: number,
  now: number,
): ResolvedSet {
  if (options === undefined) return ttlOnly(defaultTtl, now)
  if (typeof options === 'number') return ttlOnly(validateTtl(options), now)
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(
      'options',
      `must be an object or a TTL number, got ${typeof options}`,
    )
  }
  const { ttl, expiresAt, version, expectedVersion, tags, createdAt } = options
  const at = expiryOf(ttl, expiresAt, defaultTtl, now)
  checkVersions(version, expectedVersion)
  if (createdAt !== undefined && (typeof createdAt !== 'number' || !Number.isFinite(createdAt))) {
    throw new InvalidOptionError(
      'createdAt',
      `must be epoch milliseconds, got ${String(createdAt)}`,
    )
  }
  return {
    expiresAt: at,
    createdAt: createdAt ?? now,
    version,
    expectedVersion,
    tags: tags === undefined ? EMPTY_TAGS : validateTags(tags),
  }
}

/** A write with only a TTL (a valid one: `Infinity` = no expiry). */
function ttlOnly(ttl: number, now: number): ResolvedSet {
  return {
    expiresAt: ttl === Infinity ? null : absolute(now + ttl),
    createdAt: now,
    version: undefined,
    expectedVersion: undefined,
    tags: EMPTY_TAGS,
  }
}

/** The expiry `ttl` or `expiresAt` gives (at most one of them), else `defaultTtl`'s. */
function expiryOf(
  ttl: number | undefined,
  expiresAt: number | null | undefined,
  defaultTtl: number,
  now: number,
): number | null {
  if (ttl !== undefined && expiresAt !== undefined) {
    throw new InvalidOptionError('ttl', 'give either ttl or expiresAt, not both')
  }
  if (expiresAt === undefined) {
    const t = ttl === undefined ? defaultTtl : validateTtl(ttl)
    return t === Infinity ? null : absolute(now + t)
  }
  if (expiresAt !== null && (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))) {
    throw new InvalidOptionError(
      'expiresAt',
      `must be epoch milliseconds or null, got ${String(expiresAt)}`,
    )
  }
  return expiresAt === null ? null : absolute(expiresAt)
}

/** Refuses a malformed `version` or `expectedVersion`, and the two together. */
function checkVersions(version: unknown, expectedVersion: unknown): void {
  if (version !== undefined && !isVersion(version, 1)) {
    throw new InvalidOptionError(
      'version',
      `must be a positive safe integer, got ${String(version)}`,
    )
  }
  if (expectedVersion === undefined) return
  if (!isVersion(expectedVersion, 0)) {
    throw new InvalidOptionError(
      'expectedVersion',
      `must be a non-negative safe integer (0 = absent), got ${String(expectedVersion)}`,
    )
  }
  if (version !== undefined) {
    throw new InvalidOptionError('version', 'cannot be combined with expectedVersion')
  }
}

/**
 * Validates a namespace name and the namespace options shared by every tier; returns the
 * namespace's default TTL (its own, or the tier's).
 * @throws {InvalidKeyError} | {InvalidOptionError}
 */
export function resolveNamespace(
  name: string,
  options: NamespaceOptions,
  tierDefaultTtl: number,
): number {
  validateNamespace(name)
  return options.defaultTtl === undefined
    ? tierDefaultTtl
    : validateTtl(options.defaultTtl, 'defaultTtl')
}

/** Remaining life of an entry in ms (`Infinity` when it never expires, 0 when expired). */
export function remainingTtl(entry: Pick<CacheEntry, 'expiresAt'>, now: number): number {
  return entry.expiresAt === null ? Infinity : Math.max(0, entry.expiresAt - now)
}
