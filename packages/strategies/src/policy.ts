import {
  type CacheConfig,
  type CacheStore,
  hasTrackedBatches,
  InvalidConfigError,
  InvalidOptionError,
  isChangeRecordingStore,
  type StrategyConfig,
  validateTtl,
  type WriteStrategy,
  type WriteTracking,
} from '@actor-cache/core'

/**
 * How a loader's answer is cached, said from inside the loader. Every call is checked at once
 * (a bad TTL or tag throws a typed error from the call, so the load fails before anything is
 * stored); the last call of each kind wins; calls after the loader settled change nothing.
 */
export interface CacheDirectives {
  /**
   * Cache this answer for `ttl` ms (`Infinity` = until invalidated) instead of the namespace's
   * TTL. No jitter is applied to a TTL given here.
   * @throws {InvalidOptionError} unless `ttl` is a positive number or `Infinity`
   */
  setTtl(ttl: number): void
  /**
   * Tag this answer: invalidating one of `tags` (`cache.invalidate({ namespace, tags })`) drops it
   * from every tier and instance.
   * @throws {InvalidKeyError} for a malformed tag list
   */
  setTags(tags: readonly string[]): void
  /**
   * Hand this answer to the callers but cache nothing: no tier keeps it and, for "not found", the
   * negative cache does not remember it.
   */
  doNotCache(): void
}

/** What a loader receives besides the key. */
export interface LoaderContext<V> extends CacheDirectives {
  /** Aborted when the hard timeout passes; the result is then ignored. */
  readonly signal: AbortSignal
  /** The expired value still inside its grace window, if there is one. */
  readonly stale: V | undefined
}

/** What a batch loader receives besides the keys; its directives apply to every key it answers. */
export interface BatchLoaderContext extends CacheDirectives {
  /** Aborted when the hard timeout passes; the result is then ignored. */
  readonly signal: AbortSignal
}

/**
 * Loads one value from the source of truth. Return `undefined` for "not found" (negatively
 * cached for `negativeTtl`). A thrown error reaches the caller unless a stale value can be served.
 */
export type Loader<V> = (
  key: string,
  context: LoaderContext<V>,
) => V | undefined | Promise<V | undefined>

/**
 * A loader that always finds a value: `getOrSet` with one resolves to `V`, never `undefined`.
 */
export type ValueLoader<V> = (key: string, context: LoaderContext<V>) => V | Promise<V>

/**
 * Loads several values at once: return an array in the order of `keys` or a Map by key;
 * missing keys mean "not found".
 */
export type BatchLoader<V> = (
  keys: readonly string[],
  context: BatchLoaderContext,
) =>
  | readonly (V | undefined)[]
  | ReadonlyMap<string, V>
  | Promise<readonly (V | undefined)[] | ReadonlyMap<string, V>>

/**
 * The store of record of a namespace: where write-through and write-around write synchronously and
 * write-behind flushes to. It assigns versions (`set` without a version stores the current one + 1),
 * like every tier; `@actor-cache/prisma-store` and any {@link CacheStore} qualify.
 */
export type RecordStore<V> = Pick<
  CacheStore<V>,
  'namespace' | 'tier' | 'get' | 'getMany' | 'set' | 'setMany' | 'delete' | 'deleteMany'
>

/** Settings of one namespace (entity type). Config file values are the defaults for these. */
export interface NamespacePolicy<V = unknown> {
  /**
   * How writes reach the store of record. `write_through`: record, then caches, in the call.
   * `write_behind`: caches and the write queue in the call, the record later in batches.
   * `write_around`: record in the call, cache entries invalidated everywhere.
   * @default 'write_through'
   */
  strategy?: WriteStrategy
  /** Life of cached entries in ms (`Infinity` = until invalidated). @default 300_000 */
  ttl?: number
  /**
   * Spread of expiries: each write keeps `ttl × (1 − jitter × random)`, never longer than `ttl`.
   * @default the config's `invalidation.ttl_jitter`, else 0.1
   */
  jitter?: number
  /** Refresh entries in the background when read with less than `refreshAheadThreshold` of their life left. @default false */
  refreshAhead?: boolean
  /** Fraction of an entry's life below which a read triggers a refresh. @default 0.2 */
  refreshAheadThreshold?: number
  /**
   * How long after expiry an entry may still be served when the loader or a lower tier fails
   * (stale-if-error), in ms. Tiers keep entries this much longer. @default 0
   */
  grace?: number
  /**
   * With a stale value at hand, wait this long (ms) for the loader, then return the stale value and
   * let the loader finish in the background. @default undefined (wait for the loader)
   */
  softTimeout?: number
  /** Give up on the loader after this many ms: stale value if any, else `TimeoutError`. @default undefined */
  hardTimeout?: number
  /** How long "not found" from a loader is remembered, in ms (0 = not at all). @default 0 */
  negativeTtl?: number
  /**
   * After a loader failure with a stale value served, wait this long (ms, doubling per failure up
   * to 16x) before calling the loader again for that key; meanwhile the stale value is served.
   * @default 1000
   */
  failureBackoff?: number
  /** The namespace's loader (read-through); `getOrSet` can pass its own. */
  loader?: Loader<V>
  /** The namespace's batch loader, used by `getMany`. @default calls `loader` per key */
  batchLoader?: BatchLoader<V>
  /**
   * Store of record. `undefined`: the L3 tier's store for this namespace when an L3 is configured;
   * `false`: none (L3, if any, is then a cache tier with TTLs, and invalidations reach it).
   */
  record?: RecordStore<V> | false
  /** Lifetime of the cross-instance load lock in ms (needs a lock provider). @default 10_000 */
  lockTtl?: number
  /** How long other instances wait for the lock holder's result before loading themselves (ms). @default 5_000 */
  lockWait?: number
  /**
   * Check every written value against the default serializer's rules (no cycles, functions,
   * symbols or class instances) before any tier is touched, so a value no tier could store never
   * costs a round trip. Turn off for a namespace whose tiers use a codec that accepts more.
   * @default true
   */
  checkValues?: boolean
}

/**
 * A policy of a namespace whose value type the cache does not know (a cache not typed by its
 * namespaces): it takes a policy of any value type.
 */
// biome-ignore lint/suspicious/noExplicitAny: a loader typed for its own values (its context's `stale` included) must fit; `unknown` would refuse it
export type AnyNamespacePolicy = NamespacePolicy<any>

/** A policy with every default applied. */
export interface ResolvedPolicy<V> {
  strategy: WriteStrategy
  ttl: number
  jitter: number
  refreshAhead: boolean
  refreshAheadThreshold: number
  grace: number
  softTimeout: number | undefined
  hardTimeout: number | undefined
  negativeTtl: number
  failureBackoff: number
  loader: Loader<V> | undefined
  batchLoader: BatchLoader<V> | undefined
  record: RecordStore<V> | false | undefined
  lockTtl: number
  lockWait: number
  checkValues: boolean
}

const STRATEGIES: readonly WriteStrategy[] = ['write_through', 'write_behind', 'write_around']

function fraction(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new InvalidOptionError(name, `must be a number from 0 to 1, got ${String(value)}`)
  }
  return value
}

function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new InvalidOptionError(name, `must be a non-negative number of ms, got ${String(value)}`)
  }
  return value
}

function positiveInt(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new InvalidOptionError(
      name,
      `must be a positive integer number of ms, got ${String(value)}`,
    )
  }
  return value as number
}

function optionalPositive(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidOptionError(name, `must be a positive number of ms, got ${String(value)}`)
  }
  return value
}

function fromConfig<V>(config: StrategyConfig | undefined): NamespacePolicy<V> {
  if (config === undefined) return {}
  return {
    strategy: config.strategy,
    ttl: config.ttl,
    refreshAhead: config.refreshAhead,
    refreshAheadThreshold: config.refreshAheadThreshold,
    grace: config.grace,
    negativeTtl: config.negativeTtl,
  }
}

/**
 * Merges defaults, the config file's `strategies.<name>` entry and code, and validates the result.
 * @throws {InvalidOptionError}
 */
export function resolvePolicy<V>(
  name: string,
  config: CacheConfig | undefined,
  ...layers: (NamespacePolicy<V> | undefined)[]
): ResolvedPolicy<V> {
  const merged: NamespacePolicy<V> = {}
  for (const layer of [fromConfig<V>(config?.strategies[name]), ...layers]) {
    if (layer === undefined) continue
    if (typeof layer !== 'object' || layer === null) {
      throw new InvalidOptionError('namespace options', `must be an object, got ${String(layer)}`)
    }
    for (const [k, v] of Object.entries(layer)) {
      if (v !== undefined) (merged as Record<string, unknown>)[k] = v
    }
  }
  const strategy = merged.strategy ?? 'write_through'
  if (!STRATEGIES.includes(strategy)) {
    throw new InvalidOptionError(
      'strategy',
      `must be one of ${STRATEGIES.join(', ')}, got ${String(strategy)}`,
    )
  }
  const softTimeout = optionalPositive('softTimeout', merged.softTimeout)
  const hardTimeout = optionalPositive('hardTimeout', merged.hardTimeout)
  if (softTimeout !== undefined && hardTimeout !== undefined && softTimeout >= hardTimeout) {
    throw new InvalidOptionError('softTimeout', 'must be shorter than hardTimeout')
  }
  for (const fn of ['loader', 'batchLoader'] as const) {
    if (merged[fn] !== undefined && typeof merged[fn] !== 'function') {
      throw new InvalidOptionError(fn, `must be a function, got ${typeof merged[fn]}`)
    }
  }
  const record = merged.record
  if (record !== undefined && record !== false) {
    for (const m of ['get', 'getMany', 'set', 'setMany', 'delete', 'deleteMany'] as const) {
      if (typeof record[m] !== 'function') {
        throw new InvalidOptionError('record', `must be a store with a ${m} method`)
      }
    }
  }
  return {
    strategy,
    ttl: validateTtl(merged.ttl ?? 300_000),
    jitter: fraction('jitter', merged.jitter ?? config?.invalidation.ttlJitter ?? 0.1),
    refreshAhead: merged.refreshAhead === true,
    refreshAheadThreshold: fraction('refreshAheadThreshold', merged.refreshAheadThreshold ?? 0.2),
    grace: nonNegative('grace', merged.grace ?? 0),
    softTimeout,
    hardTimeout,
    negativeTtl: nonNegative('negativeTtl', merged.negativeTtl ?? 0),
    failureBackoff: nonNegative('failureBackoff', merged.failureBackoff ?? 1000),
    loader: merged.loader,
    batchLoader: merged.batchLoader,
    record,
    lockTtl: positiveInt('lockTtl', merged.lockTtl ?? 10_000),
    lockWait: nonNegative('lockWait', merged.lockWait ?? 5_000),
    checkValues: merged.checkValues !== false,
  }
}

/** Rejects a configuration the tiers cannot honour. */
export function checkStrategyNeedsRecord(
  name: string,
  strategy: WriteStrategy,
  hasRecord: boolean,
): void {
  if (!hasRecord && strategy !== 'write_through') {
    throw new InvalidConfigError([
      {
        path: `strategies.${name}.strategy`,
        message: `${strategy} needs a store of record: configure an L3 tier or give the namespace a record store`,
      },
    ])
  }
}

/**
 * Whether `name` is tracked, checking that it can be: a tracked namespace writes its change
 * records in the record's transaction, so it needs a record that records changes (and, for
 * write-behind, writes tracked batches, with a tracking that stamps queued writes).
 */
export function checkTracking(
  name: string,
  tracking: WriteTracking | undefined,
  strategy: WriteStrategy,
  record: RecordStore<unknown> | undefined,
): boolean {
  if (tracking === undefined || !tracking.tracks(name)) return false
  if (strategy === 'write_behind' && (!hasTrackedBatches(record) || tracking.stamp === undefined)) {
    throw new InvalidOptionError(
      'tracking',
      `namespace "${name}" is tracked with write_behind: its store of record must write tracked batches (@actor-cache/prisma-store) and its tracking must stamp queued writes (@actor-cache/state-tracker)`,
    )
  }
  if (!isChangeRecordingStore(record)) {
    throw new InvalidOptionError(
      'tracking',
      `namespace "${name}" is tracked, but its store of record cannot log changes with its writes: use @actor-cache/prisma-store as L3 (or as the namespace's record)`,
    )
  }
  return true
}
