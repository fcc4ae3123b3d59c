import { readFile } from 'node:fs/promises'
import { type CacheConfig, glob, parseCacheConfigYaml } from '@actor-cache/core'
import { createMemCache, type MemCacheStats } from '@actor-cache/memcache'

/** What the quickstart measured. */
export interface QuickstartReport {
  requests: number
  /** Database reads with the cache (misses only). */
  dbQueriesCached: number
  /** Database reads without it (every request). */
  dbQueriesUncached: number
  /** Mean time per request, with and without the cache (ms). */
  msPerRequestCached: number
  msPerRequestUncached: number
  stats: MemCacheStats
}

interface PrimaryCore {
  id: string
  hp: number
  level: number
  name: string
}

/**
 * A stand-in for the database: rows kept as JSON text (about 2 KB each, like a driver's wire
 * format), parsed on every query after an event-loop hop. It counts its queries.
 */
class FakeDatabase {
  queries = 0
  readonly #rows = new Map<number, string>()
  async load(id: number): Promise<PrimaryCore> {
    this.queries++
    await new Promise((resolve) => setImmediate(resolve))
    let row = this.#rows.get(id)
    if (row === undefined) {
      const inventory = Array.from({ length: 40 }, (_, i) => ({ item: `item-${i}`, count: i }))
      row = JSON.stringify({
        id: `actor:${id}`,
        hp: 100 + (id % 50),
        level: 1 + (id % 60),
        name: `hero-${id}`,
        inventory,
      })
      this.#rows.set(id, row)
    }
    return JSON.parse(row) as PrimaryCore
  }
}

/** Deterministic Zipf(s) ranks over [0, n). */
function zipf(n: number, s: number, count: number, seed = 7): number[] {
  const cdf: number[] = []
  let total = 0
  for (let k = 0; k < n; k++) {
    total += 1 / (k + 1) ** s
    cdf.push(total)
  }
  let a = seed
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return Array.from({ length: count }, () => {
    const u = rand() * total
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((cdf[mid] as number) < u) lo = mid + 1
      else hi = mid
    }
    return lo
  })
}

/** A horizontal bar of `width` cells for a fraction in [0, 1]. */
export function bar(fraction: number, width = 30): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width)
  return '█'.repeat(full) + '░'.repeat(width - full)
}

/** Loads the design document's configuration shipped with @actor-cache/core. */
export async function loadSeedConfig(): Promise<CacheConfig> {
  const url = import.meta.resolve('@actor-cache/core/examples/cache.yaml')
  return parseCacheConfigYaml(await readFile(new URL(url), 'utf8'), { source: 'cache.yaml' })
}

/** Runs the quickstart: a read-through workload with and without the L1 tier, then a tour. */
export async function runQuickstart(
  options: { requests?: number; log?: (line: string) => void } = {},
): Promise<QuickstartReport> {
  const log = options.log ?? console.log
  const requests = options.requests ?? 50_000
  const config = await loadSeedConfig()
  log(
    `config: mem_cache max_size ${config.memCache.maxSize} bytes, default_ttl ${config.memCache.defaultTtl} ms`,
  )
  log(
    `strategies: ${Object.entries(config.strategies)
      .map(([ns, s]) => `${ns}=${s.strategy}/${s.ttl / 1000}s`)
      .join(', ')}`,
  )

  const l1 = createMemCache(config.memCache)
  const primary = l1.namespace<PrimaryCore>('primary_core', {
    defaultTtl: config.strategies.primary_core?.ttl ?? 300_000,
  })
  const ids = zipf(10_000, 0.99, requests)

  // Without a cache: every request is a database read.
  const uncachedDb = new FakeDatabase()
  let t0 = performance.now()
  for (const id of ids) await uncachedDb.load(id)
  const msUncached = (performance.now() - t0) / requests

  // With the L1 tier: read-through, the database only on a miss.
  const db = new FakeDatabase()
  t0 = performance.now()
  for (const id of ids) {
    const key = `actor:${id}`
    if (primary.getSync(key) === undefined) primary.setSync(key, await db.load(id))
  }
  const msCached = (performance.now() - t0) / requests
  const stats = l1.stats()

  log(`\n${requests.toLocaleString('en-US')} reads of 10,000 actors (Zipf 0.99)`)
  log(`  L1 hit ratio      ${bar(stats.hitRatio)} ${(100 * stats.hitRatio).toFixed(1)}%`)
  log(
    `  DB reads, cached  ${bar(db.queries / uncachedDb.queries)} ${db.queries.toLocaleString('en-US')}`,
  )
  log(`  DB reads, no L1   ${bar(1)} ${uncachedDb.queries.toLocaleString('en-US')}`)
  log(
    `  time per read     ${(msCached * 1000).toFixed(1)} µs cached vs ${(msUncached * 1000).toFixed(1)} µs uncached (${(msUncached / msCached).toFixed(1)}x)`,
  )

  log('\nA short tour:')
  const hero = primary.getSync('actor:0')
  log(
    `  actor:0 is version ${hero?.version}, expires in ${Math.round(((await primary.getTTL('actor:0')) ?? 0) / 1000)} s`,
  )
  try {
    ;(hero?.value as PrimaryCore).hp = 0
  } catch (error) {
    log(`  mutating a cached value is refused: ${(error as Error).message}`)
  }
  const next = await primary.set(
    'actor:0',
    { ...(hero?.value as PrimaryCore), hp: 1 },
    { expectedVersion: hero?.version ?? 0 },
  )
  log(`  compare-and-set wrote version ${next.version}`)
  await primary
    .set(
      'actor:0',
      { ...(hero?.value as PrimaryCore), hp: 2 },
      { expectedVersion: hero?.version ?? 0 },
    )
    .catch((error: Error & { code?: string }) =>
      log(`  a stale compare-and-set fails with ${error.code}`),
    )
  const userText = '1*'
  log(
    `  pattern delete of glob\`actor:${userText}\` removed ${await primary.deletePattern(glob`actor:${userText}`)} entries (user text escaped)`,
  )
  log(`  pattern delete of "actor:1*" removed ${await primary.deletePattern('actor:1*')} entries`)
  await l1.close()
  return {
    requests,
    dbQueriesCached: db.queries,
    dbQueriesUncached: uncachedDb.queries,
    msPerRequestCached: msCached,
    msPerRequestUncached: msUncached,
    stats,
  }
}
