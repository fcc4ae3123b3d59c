import { parse as parseYaml, YAMLParseError } from 'yaml'
import { z } from 'zod'
import {
  bool,
  duration,
  fraction,
  int,
  namespaceName,
  namespaceRecord,
  oneOf,
  size,
  str,
} from './config-fields.js'
import { type ConfigIssue, InvalidConfigError } from './errors.js'
import { MAX_TAGS, parseGlob, validateKey, validateTags } from './keys.js'
import { monitoringSchema } from './monitoring-config.js'

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

const memCacheSchema = z
  .strictObject({
    max_size: size.prefault('100MB'),
    max_entries: int(1).optional(),
    max_entry_size: size.refine((n) => n >= 1, { error: 'must be at least 1 byte' }).optional(),
    default_ttl: duration({ allowNever: true }).prefault('300s'),
    eviction_policy: oneOf(['lru', 'tinylfu']).prefault('lru'),
    enable_statistics: bool.prefault(true),
    cleanup_interval: duration({ allowZero: true }).prefault('60s'),
  })
  .superRefine((v, ctx) => {
    if (v.max_size === 0) {
      ctx.addIssue({ code: 'custom', path: ['max_size'], message: 'must be greater than 0 bytes' })
    }
    if (v.max_entry_size !== undefined && v.max_entry_size > v.max_size) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_entry_size'],
        message: 'must not exceed max_size',
      })
    }
  })
  .transform((v) => ({
    maxSize: v.max_size,
    maxEntries: v.max_entries,
    maxEntrySize: v.max_entry_size,
    defaultTtl: v.default_ttl,
    evictionPolicy: v.eviction_policy,
    enableStatistics: v.enable_statistics,
    cleanupInterval: v.cleanup_interval,
  }))

const tlsSchema = z.strictObject({
  ca_file: str.optional(),
  cert_file: str.optional(),
  key_file: str.optional(),
  servername: str.optional(),
  reject_unauthorized: bool.prefault(true),
})

const redisSchema = z
  .strictObject({
    url: str
      .regex(/^rediss?:\/\//, { error: 'expected a URL starting with redis:// or rediss://' })
      .optional(),
    host: str.min(1, { error: 'must not be empty' }).prefault('localhost'),
    port: int(1, 65535).prefault(6379),
    username: str.optional(),
    password: str.prefault(''),
    db: int(0).prefault(0),
    key_prefix: str
      .regex(/^[A-Za-z0-9_.-]{1,32}$/, {
        error: 'expected 1-32 letters, digits, "_", "." or "-"',
      })
      .prefault('ac'),
    max_retries: int(0).prefault(3),
    dial_timeout: duration().prefault('5s'),
    read_timeout: duration().prefault('3s'),
    write_timeout: duration().prefault('3s'),
    pool_size: int(1).prefault(10),
    min_idle_conns: int(0).prefault(0),
    tls: z.union([bool, tlsSchema]).prefault(false),
  })
  .superRefine((v, ctx) => {
    if (v.min_idle_conns > v.pool_size) {
      ctx.addIssue({
        code: 'custom',
        path: ['min_idle_conns'],
        message: `must not exceed pool_size (${v.pool_size})`,
      })
    }
  })
  .transform((v) => ({
    url: v.url,
    host: v.host,
    port: v.port,
    username: v.username,
    password: v.password,
    db: v.db,
    keyPrefix: v.key_prefix,
    maxRetries: v.max_retries,
    dialTimeout: v.dial_timeout,
    readTimeout: v.read_timeout,
    writeTimeout: v.write_timeout,
    poolSize: v.pool_size,
    minIdleConns: v.min_idle_conns,
    tls:
      typeof v.tls === 'boolean'
        ? v.tls
        : {
            caFile: v.tls.ca_file,
            certFile: v.tls.cert_file,
            keyFile: v.tls.key_file,
            servername: v.tls.servername,
            rejectUnauthorized: v.tls.reject_unauthorized,
          },
  }))

const strategySchema = z
  .strictObject({
    strategy: oneOf(['write_through', 'write_behind', 'write_around']),
    ttl: duration({ allowNever: true }),
    refresh_ahead: bool.prefault(false),
    refresh_ahead_threshold: fraction.prefault(0.2),
    grace: duration({ allowZero: true }).prefault('0s'),
    negative_ttl: duration({ allowZero: true }).prefault('0s'),
  })
  .transform((v) => ({
    strategy: v.strategy,
    ttl: v.ttl,
    refreshAhead: v.refresh_ahead,
    refreshAheadThreshold: v.refresh_ahead_threshold,
    grace: v.grace,
    negativeTtl: v.negative_ttl,
  }))

/** A string checked by one of the key rules of core (placeholders like `{entityId}` pass). */
const checked = (check: (value: string) => unknown) =>
  str.superRefine((value, ctx) => {
    try {
      check(value)
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message })
    }
  })

const targetSchema = z
  .strictObject({
    namespace: namespaceName.optional(),
    all: bool.optional(),
    keys: z.array(checked(validateKey)).optional(),
    patterns: z.array(checked(parseGlob)).optional(),
    tags: z
      .array(checked((tag) => validateTags([tag])))
      .max(MAX_TAGS, { error: `at most ${MAX_TAGS} tags` })
      .optional(),
  })
  .superRefine((t, ctx) => {
    if (!t.all && !t.keys?.length && !t.patterns?.length && !t.tags?.length) {
      ctx.addIssue({
        code: 'custom',
        message: 'a target needs at least one of all, keys, patterns, tags',
      })
    }
    if ((t.all || t.keys?.length || t.patterns?.length) && t.namespace === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['namespace'],
        message: 'required with all, keys or patterns',
      })
    }
  })

const invalidationSchema = z
  .strictObject({
    ttl_jitter: fraction.prefault(0.1),
    events: z.record(str, z.array(targetSchema)).prefault({}),
    dependencies: namespaceRecord(z.array(namespaceName)).prefault({}),
  })
  .superRefine((v, ctx) => {
    const cycle = findCycle(v.dependencies)
    if (cycle) {
      ctx.addIssue({
        code: 'custom',
        path: ['dependencies', cycle[0] as string],
        message: `dependency cycle: ${cycle.join(' -> ')}`,
      })
    }
  })
  .transform((v) => ({ ttlJitter: v.ttl_jitter, events: v.events, dependencies: v.dependencies }))

function findCycle(graph: Record<string, string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>()
  const path: string[] = []
  const visit = (node: string): string[] | undefined => {
    const s = state.get(node)
    if (s === 'done') return undefined
    if (s === 'visiting') return [...path.slice(path.indexOf(node)), node]
    state.set(node, 'visiting')
    path.push(node)
    for (const next of graph[node] ?? []) {
      const found = visit(next)
      if (found) return found
    }
    path.pop()
    state.set(node, 'done')
    return undefined
  }
  for (const node of Object.keys(graph)) {
    const found = visit(node)
    if (found) return found
  }
  return undefined
}

/**
 * Zod schema of the configuration file (docs/configuration.md) as YAML/JSON input (snake_case, units as text).
 * Its output is the normalised {@link CacheConfig} (camelCase, milliseconds, bytes).
 */
export const cacheConfigSchema = z
  .strictObject({
    mem_cache: memCacheSchema.prefault({}),
    redis: redisSchema.optional(),
    strategies: namespaceRecord(strategySchema).prefault({}),
    invalidation: invalidationSchema.prefault({}),
    monitoring: monitoringSchema.optional(),
  })
  .transform((v) => ({
    memCache: v.mem_cache,
    redis: v.redis,
    strategies: v.strategies,
    invalidation: v.invalidation,
    monitoring: v.monitoring,
  }))

/** Validated, normalised configuration. Durations are milliseconds (`Infinity` = never), sizes bytes. */
export type CacheConfig = z.output<typeof cacheConfigSchema>
/** The `mem_cache` section, normalised. */
export type MemCacheConfig = CacheConfig['memCache']
/** The `redis` section, normalised. */
export type RedisConfig = NonNullable<CacheConfig['redis']>
/** One entry of the `strategies` section, normalised. */
export type StrategyConfig = CacheConfig['strategies'][string]
/** A write strategy name. */
export type WriteStrategy = StrategyConfig['strategy']
/** The `invalidation` section, normalised. */
export type InvalidationConfig = CacheConfig['invalidation']
/** One target of an invalidation event rule. */
export type InvalidationTarget = InvalidationConfig['events'][string][number]

/** Options of {@link parseCacheConfig} and {@link parseCacheConfigYaml}. */
export interface ParseConfigOptions {
  /** Name of the document for error messages (e.g. a file path). */
  source?: string
  /**
   * Variables for `${NAME}` and `${NAME:-default}` in string values (pass `process.env` to read
   * secrets such as the Redis password from the environment). Without it, no substitution.
   */
  env?: Readonly<Record<string, string | undefined>>
}

const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

function substitute(
  value: unknown,
  env: ParseConfigOptions['env'],
  path: string[],
  issues: ConfigIssue[],
): unknown {
  if (typeof value === 'string') {
    if (!env || !value.includes('${')) return value
    return value.replace(VAR_RE, (_m, name: string, fallback: string | undefined) => {
      const v = env[name] ?? fallback
      if (v === undefined)
        issues.push({ path: path.join('.'), message: `environment variable ${name} is not set` })
      return v ?? ''
    })
  }
  if (Array.isArray(value))
    return value.map((v, i) => substitute(v, env, [...path, String(i)], issues))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (k === '__proto__') {
        issues.push({ path: [...path, k].join('.'), message: 'key "__proto__" is not allowed' })
        continue
      }
      out[k] = substitute(v, env, [...path, k], issues)
    }
    return out
  }
  return value
}

/**
 * Validates a configuration object (the parsed YAML or JSON of the configuration file, see docs/configuration.md).
 * @throws {InvalidConfigError} listing every problem with its path
 */
export function parseCacheConfig(input: unknown, options: ParseConfigOptions = {}): CacheConfig {
  const issues: ConfigIssue[] = []
  const ctx = options.source === undefined ? {} : { source: options.source }
  const data = substitute(input ?? {}, options.env, [], issues)
  // An empty YAML section (every line commented out) parses as null: treat it as absent.
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    for (const [k, v] of Object.entries(data))
      if (v === null) delete (data as Record<string, unknown>)[k]
  }
  if (issues.length > 0) throw new InvalidConfigError(issues, ctx)
  const result = cacheConfigSchema.safeParse(data)
  if (result.success) return result.data
  throw new InvalidConfigError(
    result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    ctx,
  )
}

/**
 * Parses and validates a YAML configuration file (its format: docs/configuration.md).
 * @example parseCacheConfigYaml(await readFile('cache.yaml', 'utf8'), { source: 'cache.yaml', env: process.env })
 * @throws {InvalidConfigError} on YAML syntax errors and on invalid settings
 */
export function parseCacheConfigYaml(text: string, options: ParseConfigOptions = {}): CacheConfig {
  let data: unknown
  try {
    data = parseYaml(text, { maxAliasCount: 50, uniqueKeys: true })
  } catch (error) {
    const where =
      error instanceof YAMLParseError && error.linePos ? `line ${error.linePos[0].line}` : ''
    throw new InvalidConfigError(
      [{ path: where, message: `YAML syntax error: ${(error as Error).message}` }],
      {
        cause: error,
        ...(options.source === undefined ? {} : { source: options.source }),
      },
    )
  }
  return parseCacheConfig(data, options)
}
