import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { InvalidConfigError, parseCacheConfig, parseCacheConfigYaml } from '../src/index.js'

const seedYaml = await readFile(new URL('../examples/cache.yaml', import.meta.url), 'utf8')

function issuesOf(input: string | object): { path: string; message: string }[] {
  try {
    if (typeof input === 'string') parseCacheConfigYaml(input)
    else parseCacheConfig(input)
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError)
    expect(error).toMatchObject({ code: 'E_INVALID_CONFIG' })
    return [...(error as InvalidConfigError).issues]
  }
  throw new Error('expected the configuration to be rejected')
}

describe('the seed configuration', () => {
  it('loads exactly as written in the design document', () => {
    const config = parseCacheConfigYaml(seedYaml, { source: 'cache.yaml' })
    expect(config.memCache).toEqual({
      maxSize: 100 * 1024 * 1024,
      maxEntries: undefined,
      maxEntrySize: undefined,
      defaultTtl: 300_000,
      evictionPolicy: 'lru',
      enableStatistics: true,
      cleanupInterval: 60_000,
    })
    expect(config.redis).toMatchObject({
      host: 'localhost',
      port: 6379,
      password: '',
      db: 0,
      maxRetries: 3,
      dialTimeout: 5_000,
      readTimeout: 3_000,
      writeTimeout: 3_000,
      poolSize: 10,
      minIdleConns: 5,
      keyPrefix: 'ac',
      tls: false,
    })
    expect(config.strategies).toEqual({
      primary_core: expect.objectContaining({
        strategy: 'write_through',
        ttl: 300_000,
        refreshAhead: true,
      }),
      derived_stats: expect.objectContaining({
        strategy: 'write_behind',
        ttl: 600_000,
        refreshAhead: false,
      }),
      flexible_stats: expect.objectContaining({
        strategy: 'write_around',
        ttl: 1_800_000,
        refreshAhead: true,
      }),
    })
    expect(config.invalidation.ttlJitter).toBeCloseTo(0.1)
    expect(config.invalidation.dependencies).toEqual({
      derived_stats: ['primary_core', 'flexible_stats'],
    })
    expect(config.invalidation.events.config_changed).toEqual([{ namespace: 'config', all: true }])
  })

  it('reads sizes with spaces or tabs around the unit as the size they say', () => {
    expect(parseCacheConfig({ mem_cache: { max_size: ' 100MB ' } }).memCache.maxSize).toBe(
      100 * 1024 * 1024,
    )
    expect(parseCacheConfig({ mem_cache: { max_size: '100\tMB' } }).memCache.maxSize).toBe(
      100 * 1024 * 1024,
    )
  })

  it('treats an empty section as absent', () => {
    expect(
      parseCacheConfigYaml('mem_cache:\n  # max_size: 1MB\nstrategies:\n').memCache.maxSize,
    ).toBe(100 * 1024 * 1024)
  })

  it('fills defaults for an empty document', () => {
    const config = parseCacheConfigYaml('')
    expect(config.memCache.maxSize).toBe(100 * 1024 * 1024)
    expect(config.memCache.defaultTtl).toBe(300_000)
    expect(config.redis).toBeUndefined()
    expect(config.strategies).toEqual({})
  })

  it('accepts "never", byte counts, sizes with spaces and percentages', () => {
    const config = parseCacheConfig({
      mem_cache: { max_size: 1_048_576, default_ttl: 'never', max_entries: 1000 },
      strategies: { s: { strategy: 'write_around', ttl: '1.5h', refresh_ahead_threshold: '25%' } },
      invalidation: { ttl_jitter: 0 },
    })
    expect(config.memCache).toMatchObject({
      maxSize: 1_048_576,
      defaultTtl: Infinity,
      maxEntries: 1000,
    })
    expect(config.strategies.s).toMatchObject({ ttl: 5_400_000, refreshAheadThreshold: 0.25 })
    expect(parseCacheConfig({ mem_cache: { max_size: '64 MB' } }).memCache.maxSize).toBe(
      64 * 1024 * 1024,
    )
  })

  it('substitutes environment variables only when an env is given', () => {
    const yaml =
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the placeholder syntax under test
      'redis:\n  password: "${REDIS_PASSWORD}"\n  host: "${REDIS_HOST:-cache.internal}"\n'
    const config = parseCacheConfigYaml(yaml, { env: { REDIS_PASSWORD: 's3cret' } })
    expect(config.redis).toMatchObject({ password: 's3cret', host: 'cache.internal' })
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the placeholder syntax under test
    expect(parseCacheConfigYaml(yaml).redis?.password).toBe('${REDIS_PASSWORD}')
    try {
      parseCacheConfigYaml(yaml, { env: {} })
      expect.unreachable()
    } catch (error) {
      expect((error as InvalidConfigError).issues).toEqual([
        { path: 'redis.password', message: 'environment variable REDIS_PASSWORD is not set' },
      ])
    }
  })
})

describe('bad configuration', () => {
  const cases: [label: string, input: string | object, path: string, message: RegExp][] = [
    [
      'size with an unknown unit',
      'mem_cache:\n  max_size: 100MiB\n',
      'mem_cache.max_size',
      /size like "100MB"/,
    ],
    ['negative size', { mem_cache: { max_size: -5 } }, 'mem_cache.max_size', /size like/],
    [
      'bare number as duration',
      'mem_cache:\n  default_ttl: 300\n',
      'mem_cache.default_ttl',
      /bare number has no unit/,
    ],
    [
      'unparseable duration',
      { strategies: { derived_stats: { strategy: 'write_behind', ttl: 'soon' } } },
      'strategies.derived_stats.ttl',
      /duration like "300s"/,
    ],
    [
      'zero TTL',
      { strategies: { a: { strategy: 'write_through', ttl: '0s' } } },
      'strategies.a.ttl',
      /greater than zero/,
    ],
    [
      'unknown eviction policy',
      'mem_cache:\n  eviction_policy: "lfu"\n',
      'mem_cache.eviction_policy',
      /one of "lru"/,
    ],
    [
      'unknown strategy',
      { strategies: { a: { strategy: 'write_sideways', ttl: '1s' } } },
      'strategies.a.strategy',
      /"write_through", "write_behind", "write_around"/,
    ],
    [
      'missing strategy ttl',
      { strategies: { a: { strategy: 'write_through' } } },
      'strategies.a.ttl',
      /duration/,
    ],
    ['port out of range', 'redis:\n  port: 70000\n', 'redis.port', /at most 65535/],
    ['fractional port', { redis: { port: 63.5 } }, 'redis.port', /integer/],
    [
      'string where a boolean belongs',
      'mem_cache:\n  enable_statistics: "yes"\n',
      'mem_cache.enable_statistics',
      /true or false/,
    ],
    ['misspelt key', 'mem_cache:\n  max_sise: 10MB\n', 'mem_cache', /max_sise/],
    ['unknown section', { caches: {} }, '', /caches/],
    [
      'min_idle_conns above pool_size',
      { redis: { pool_size: 2, min_idle_conns: 5 } },
      'redis.min_idle_conns',
      /pool_size/,
    ],
    [
      'bad namespace',
      { strategies: { 'bad name': { strategy: 'write_through', ttl: '1s' } } },
      'strategies.bad name',
      /namespace/,
    ],
    [
      'dependency cycle',
      { invalidation: { dependencies: { a: ['b'], b: ['c'], c: ['a'] } } },
      'invalidation.dependencies.a',
      /cycle: a -> b -> c -> a/,
    ],
    [
      'jitter above 100%',
      { invalidation: { ttl_jitter: '150%' } },
      'invalidation.ttl_jitter',
      /fraction/,
    ],
    [
      'empty event target',
      { invalidation: { events: { boom: [{ namespace: 'x' }] } } },
      'invalidation.events.boom.0',
      /at least one of/,
    ],
    [
      'keys without namespace',
      { invalidation: { events: { boom: [{ keys: ['a'] }] } } },
      'invalidation.events.boom.0.namespace',
      /required/,
    ],
    ['bad redis url', { redis: { url: 'http://x' } }, 'redis.url', /redis:\/\//],
    [
      'max_entry_size above max_size',
      { mem_cache: { max_size: '1MB', max_entry_size: '2MB' } },
      'mem_cache.max_entry_size',
      /max_size/,
    ],
    [
      'zero max_entry_size',
      { mem_cache: { max_entry_size: 0 } },
      'mem_cache.max_entry_size',
      /at least 1 byte/,
    ],
    [
      'size beyond a safe integer',
      { mem_cache: { max_size: '8PB' } },
      'mem_cache.max_size',
      /size like/,
    ],
    [
      'malformed pattern in an event target',
      { invalidation: { events: { e: [{ namespace: 'n', patterns: ['actor:[1'] }] } } },
      'invalidation.events.e.0.patterns.0',
      /unterminated/,
    ],
    [
      'control character in an event key',
      { invalidation: { events: { e: [{ namespace: 'n', keys: ['a\u0000'] }] } } },
      'invalidation.events.e.0.keys.0',
      /control character/,
    ],
    ['__proto__ key', '__proto__:\n  polluted: true\n', '__proto__', /not allowed/],
    ['YAML syntax error', 'mem_cache:\n  max_size: [1, 2\n', 'line', /YAML syntax error/],
    [
      'duplicate YAML key',
      'mem_cache:\n  max_size: 1MB\n  max_size: 2MB\n',
      'line',
      /YAML syntax error/,
    ],
  ]
  for (const [label, input, path, message] of cases) {
    it(`rejects ${label}, naming ${path || 'the root'}`, () => {
      const issues = issuesOf(input)
      const hit = issues.find(
        (i) => i.path === path || (path === 'line' && i.path.startsWith('line')),
      )
      expect(hit, JSON.stringify(issues)).toBeDefined()
      expect(hit?.message).toMatch(message)
    })
  }

  it('reports every problem at once, with the source name in the message', () => {
    const yaml = 'mem_cache:\n  max_size: lots\n  default_ttl: forever\nredis:\n  port: 0\n'
    try {
      parseCacheConfigYaml(yaml, { source: 'game.yaml' })
      expect.unreachable()
    } catch (error) {
      const e = error as InvalidConfigError
      expect(e.issues.map((i) => i.path)).toEqual([
        'mem_cache.max_size',
        'mem_cache.default_ttl',
        'redis.port',
      ])
      expect(e.message).toContain('in game.yaml')
      expect(e.message).toContain('mem_cache.max_size: expected a size like "100MB", got "lots"')
    }
  })

  it('does not pollute Object.prototype through YAML', () => {
    try {
      parseCacheConfigYaml('__proto__:\n  polluted: true\n')
    } catch {
      // rejected, as the case above checks
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})
