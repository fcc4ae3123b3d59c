import { InvalidOptionError, validateTtl } from '@actor-cache/core'

/** How values are protected from callers that mutate what they stored or read. */
export type ValueMode = 'freeze' | 'reference'

/** Eviction policies of {@link MemCacheOptions.evictionPolicy}. */
export type EvictionPolicyName = 'lru' | 'tinylfu'

/** Options of {@link createMemCache}; the normalised `mem_cache` config section fits as is. */
export interface MemCacheOptions {
  /**
   * Memory budget in bytes, across all namespaces. Entry sizes are estimates of their V8 heap
   * footprint (value, key and bookkeeping); least recently used entries are evicted beyond it.
   * @default 104_857_600 (100 MB)
   */
  maxSize?: number
  /** Most entries held, across all namespaces. @default unlimited (bounded by maxSize) */
  maxEntries?: number | undefined
  /** Largest single entry in bytes; larger writes throw `ValueTooLargeError`. @default maxSize / 4 */
  maxEntrySize?: number | undefined
  /** TTL in ms for writes that give none; `Infinity` for none. @default Infinity */
  defaultTtl?: number
  /**
   * Which entries go when a limit is reached. `'lru'`: the least recently used one.
   * `'tinylfu'`: W-TinyLFU, which keeps frequently used entries against a stream of one-off keys
   * (a new entry must be used more often than the entry it would displace); a higher hit ratio on
   * skewed workloads and scans, for a few bytes per entry. @default 'lru'
   */
  evictionPolicy?: EvictionPolicyName
  /** Count hits, misses, sets, deletes, evictions and expirations. @default true */
  enableStatistics?: boolean
  /**
   * Interval in ms of the sweep that drops expired entries (expired entries are never served
   * either way; the sweep frees their memory). 0 disables it. The timer never keeps the process
   * alive. @default 60_000
   */
  cleanupInterval?: number
  /**
   * `'freeze'`: writes store a validated, deeply frozen copy; every read returns that same
   * object, so reads cost no copy and nobody can corrupt the cache. `'reference'`: writes are
   * validated but stored as given; the caller promises never to mutate stored or returned values.
   * @default 'freeze'
   */
  values?: ValueMode
  /** Clock in epoch ms (tests inject a fake one). @default Date.now */
  now?: () => number
}

/** Validated options with their defaults applied. */
export interface Settings {
  maxSize: number
  maxEntries: number
  maxEntrySize: number
  defaultTtl: number
  evictionPolicy: EvictionPolicyName
  freeze: boolean
  statistics: boolean
  cleanupInterval: number
  /** The injected clock, if any. */
  now: (() => number) | undefined
}

const DEFAULT_MAX_SIZE = 100 * 1024 * 1024

function positiveInt(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidOptionError(name, `must be a positive integer, got ${String(value)}`)
  }
  return value
}

/**
 * Validates the options once and applies the defaults.
 * @throws {InvalidOptionError} naming the option and value
 */
export function resolveOptions(options: MemCacheOptions): Settings {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', 'must be an object')
  }
  const maxSize = positiveInt('maxSize', options.maxSize ?? DEFAULT_MAX_SIZE)
  const maxEntries =
    options.maxEntries === undefined
      ? Number.POSITIVE_INFINITY
      : positiveInt('maxEntries', options.maxEntries)
  const maxEntrySize =
    options.maxEntrySize === undefined
      ? Math.max(1, Math.floor(maxSize / 4))
      : positiveInt('maxEntrySize', options.maxEntrySize)
  if (maxEntrySize > maxSize) {
    throw new InvalidOptionError(
      'maxEntrySize',
      `must not exceed maxSize (${maxSize}), got ${maxEntrySize}`,
    )
  }
  const defaultTtl = validateTtl(options.defaultTtl ?? Infinity, 'defaultTtl')
  const evictionPolicy = options.evictionPolicy ?? 'lru'
  if (evictionPolicy !== 'lru' && evictionPolicy !== 'tinylfu') {
    throw new InvalidOptionError(
      'evictionPolicy',
      `must be "lru" or "tinylfu", got ${JSON.stringify(evictionPolicy)}`,
    )
  }
  const values = options.values ?? 'freeze'
  if (values !== 'freeze' && values !== 'reference') {
    throw new InvalidOptionError(
      'values',
      `must be "freeze" or "reference", got ${JSON.stringify(values)}`,
    )
  }
  const statistics = options.enableStatistics ?? true
  if (typeof statistics !== 'boolean') {
    throw new InvalidOptionError('enableStatistics', `must be a boolean, got ${String(statistics)}`)
  }
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new InvalidOptionError('now', 'must be a function returning epoch milliseconds')
  }
  const cleanupInterval = options.cleanupInterval ?? 60_000
  if (
    typeof cleanupInterval !== 'number' ||
    !(cleanupInterval >= 0) ||
    !Number.isFinite(cleanupInterval)
  ) {
    throw new InvalidOptionError(
      'cleanupInterval',
      `must be a non-negative number of ms, got ${String(cleanupInterval)}`,
    )
  }
  return {
    maxSize,
    maxEntries,
    maxEntrySize,
    defaultTtl,
    evictionPolicy,
    freeze: values === 'freeze',
    statistics,
    cleanupInterval,
    now: options.now,
  }
}
