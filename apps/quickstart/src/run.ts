import { readFile } from 'node:fs/promises'
import { type CacheConfig, parseCacheConfigYaml } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, migrate } from '@actor-cache/prisma-store'
import { openPglite } from '@actor-cache/prisma-store/client'
import { createTieredCache } from '@actor-cache/strategies'

/** What the quickstart measured. */
export interface QuickstartReport {
  requests: number
  /** Database reads the tiered cache made for `requests` reads (record hits and loads). */
  dbQueriesCached: number
  /** Database reads without a cache: one per request. */
  dbQueriesUncached: number
  /** Mean time per read with the cache and without it (ms, the latter measured on a sample). */
  msPerRequestCached: number
  msPerRequestUncached: number
  /** Share of reads answered by L1. */
  l1HitRatio: number
  /** Loader calls for 1,000 concurrent reads of one cold key. */
  stampedeLoads: number
  /** Write-behind writes acknowledged, and rows found in the database after the flush. */
  writeBehindAcked: number
  writeBehindPersisted: number
}

interface PrimaryCore {
  id: string
  hp: number
  level: number
  name: string
  inventory: { item: string; count: number }[]
}

interface DerivedStats {
  power: number
  computedFrom: number
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

/** Loads the example configuration shipped with @actor-cache/core (docs/configuration.md). */
export async function loadSeedConfig(): Promise<CacheConfig> {
  const url = import.meta.resolve('@actor-cache/core/examples/cache.yaml')
  return parseCacheConfigYaml(await readFile(new URL(url), 'utf8'), { source: 'cache.yaml' })
}

const actor = (id: number): PrimaryCore => ({
  id: `actor:${id}`,
  hp: 100 + (id % 50),
  level: 1 + (id % 60),
  name: `hero-${id}`,
  inventory: Array.from({ length: 20 }, (_, i) => ({ item: `item-${i}`, count: i })),
})

const fmt = (n: number): string => n.toLocaleString('en-US')

/**
 * Runs the quickstart on embedded PostgreSQL (PGlite, nothing to install): seeds actors, reads
 * them with and without the tiered cache, then tours write-through, write-behind, dependencies,
 * events and stampede protection.
 */
export async function runQuickstart(
  options: { requests?: number; actors?: number; log?: (line: string) => void } = {},
): Promise<QuickstartReport> {
  const log = options.log ?? console.log
  const requests = options.requests ?? 20_000
  const actors = options.actors ?? 10_000
  const config = await loadSeedConfig()
  log(
    `strategies from cache.yaml: ${Object.entries(config.strategies)
      .map(([ns, s]) => `${ns}=${s.strategy}/${s.ttl / 1000}s`)
      .join(', ')}`,
  )

  log('starting embedded PostgreSQL (PGlite) and applying the migrations ...')
  const prisma = await openPglite()
  await migrate(prisma)
  const l3 = createPrismaStore({ prisma })
  const table = l3.namespace<PrimaryCore>('primary_core')
  for (let from = 0; from < actors; from += 1000) {
    const batch = Array.from({ length: Math.min(1000, actors - from) }, (_, i) => ({
      key: `actor:${from + i}`,
      value: actor(from + i),
    }))
    await table.setMany(batch)
    log(`  seeded ${bar((from + batch.length) / actors, 20)} ${fmt(from + batch.length)} actors`)
  }
  const ids = zipf(actors, 0.99, requests)

  // Without a cache: every read is a database query (measured on a sample).
  const sample = Math.min(requests, 3_000)
  let t0 = performance.now()
  for (let i = 0; i < sample; i++) await table.get(`actor:${ids[i]}`)
  const msUncached = (performance.now() - t0) / sample

  // The tiered cache: L1 memory over the database (the store of record).
  const cache = createTieredCache({ config, l1: createMemCache(config.memCache), l3 })
  const primary = cache.namespace<PrimaryCore>('primary_core')
  t0 = performance.now()
  for (const id of ids) await primary.get(`actor:${id}`)
  const msCached = (performance.now() - t0) / requests
  const s = primary.stats()
  const dbQueries = s.recordHits + s.loads
  const l1Hits = requests - dbQueries - s.misses

  log(`\n${fmt(requests)} reads of ${fmt(actors)} actors (Zipf 0.99)`)
  log(`  L1 hit ratio       ${bar(l1Hits / requests)} ${((100 * l1Hits) / requests).toFixed(1)}%`)
  log(`  DB queries, cached ${bar(dbQueries / requests)} ${fmt(dbQueries)}`)
  log(`  DB queries, none   ${bar(1)} ${fmt(requests)}`)
  log(
    `  time per read      ${(msCached * 1000).toFixed(1)} µs cached vs ${(msUncached * 1000).toFixed(1)} µs uncached (${(msUncached / msCached).toFixed(0)}x faster)`,
  )

  log('\nA short tour:')
  const hero = await primary.getEntry('actor:0')
  const wrote = await primary.set('actor:0', { ...(hero?.value as PrimaryCore), hp: 1 })
  log(
    `  write-through: actor:0 is now version ${wrote.version} in the database and in L1 (was ${hero?.version})`,
  )
  await primary
    .set('actor:0', { ...(hero?.value as PrimaryCore), hp: 2 }, { expectedVersion: 1 })
    .catch((error: Error & { code?: string }) =>
      log(`  a compare-and-set against a stale version fails with ${error.code}`),
    )

  let computed = 0
  const derived = cache.namespace<DerivedStats>('derived_stats', {
    loader: async (key) => {
      computed++
      const core = await primary.get(key)
      return core === undefined ? undefined : { power: core.hp * core.level, computedFrom: core.hp }
    },
  })
  await derived.get('actor:7')
  await derived.get('actor:7')
  await primary.set('actor:7', { ...actor(7), hp: 500 })
  const after = await derived.get('actor:7')
  log(
    `  dependency: derived_stats was computed ${computed} times; the primary_core write dropped it, and it was recomputed from hp ${after?.computedFrom}`,
  )

  let coldLoads = 0
  const cold = await Promise.all(
    Array.from({ length: 1_000 }, () =>
      primary.getOrSet('actor:cold', async () => {
        coldLoads++
        await new Promise((r) => setTimeout(r, 20))
        return actor(-1)
      }),
    ),
  )
  log(
    `  stampede: 1,000 concurrent reads of a missing actor, ${coldLoads} loader call, ${cold.length} answers`,
  )

  const writes = 2_000
  t0 = performance.now()
  for (let i = 0; i < writes; i++)
    await derived.set(`actor:${i}`, { power: i, computedFrom: -1 }, { ttl: 600_000 })
  const ackMs = performance.now() - t0
  t0 = performance.now()
  await cache.flush()
  const flushMs = performance.now() - t0
  const rows = await l3
    .namespace<DerivedStats>('derived_stats')
    .getMany(Array.from({ length: writes }, (_, i) => `actor:${i}`))
  const persisted = rows.filter((r) => r?.value.computedFrom === -1).length
  log(
    `  write-behind: ${fmt(writes)} writes acknowledged in ${ackMs.toFixed(0)} ms, flushed in batches in ${flushMs.toFixed(0)} ms; ${fmt(persisted)} rows in the database`,
  )

  await cache.invalidateByEvent('stat_updated', { entityId: 'actor:3' })
  log('  event: stat_updated for actor:3 dropped its derived_stats everywhere')

  await cache.close()
  await prisma.$disconnect()
  return {
    requests,
    dbQueriesCached: dbQueries,
    dbQueriesUncached: requests,
    msPerRequestCached: msCached,
    msPerRequestUncached: msUncached,
    l1HitRatio: l1Hits / requests,
    stampedeLoads: coldLoads,
    writeBehindAcked: writes,
    writeBehindPersisted: persisted,
  }
}
