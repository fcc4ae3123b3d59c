import { createMemCache } from '@actor-cache/memcache'
import { createRedisStore, type RedisTier } from '@actor-cache/redis'
import { createTieredCache, type NamespaceStats, type TieredCache } from '@actor-cache/strategies'
import pg from 'pg'
import { connectRedis } from './connect-redis.js'
import { grid } from './harness.js'
import { int, median, NS, pct, progress, quantile, type State, TTL } from './tiered-common.js'
import { actorState, zipfSequence } from './workload.js'

export interface ReadThroughRow {
  name: string
  readsPerSec: number
  p50Ms: number
  p99Ms: number
  dbQueries: number
  /**
   * Fractions of the reads answered by L1, by joining a load already in flight for the same key,
   * by L2 and by the loader (PostgreSQL).
   */
  l1: number
  joined: number
  l2: number
  loader: number
}

export interface ReadThroughInput {
  databaseUrl: string
  redisUrl: string
  schema: string
  admin: pg.Client
  universe: number
  reads: number
  inFlight: number
  runs: number
}

interface Config {
  name: string
  /** L1 capacity as a fraction of the keys; undefined: no cache at all. */
  l1?: number
  /** With L2: empty at the start of each run (`'cold'`), or holding every key (`'warm'`). */
  l2?: 'cold' | 'warm'
}

interface RunFigures {
  readsPerSec: number
  p50Ms: number
  p99Ms: number
  dbQueries: number
  l1: number
  joined: number
  l2: number
  loader: number
}

/**
 * Read-through of a Zipf workload over a seeded PostgreSQL table: no cache, L1 only, L1 + L2
 * (cold and warm), a fresh cache per run.
 */
export async function readThroughZipf(
  log: (line: string) => void,
  input: ReadThroughInput,
): Promise<ReadThroughRow[]> {
  const { schema, admin, universe, reads, inFlight, runs } = input
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)

  process.stderr.write('  seeding PostgreSQL table...')
  await admin.query(`CREATE TABLE ${schema}.actors (key text PRIMARY KEY, state jsonb NOT NULL)`)
  for (let i = 0; i < universe; i += 10_000) {
    const slice = keys.slice(i, i + 10_000)
    await admin.query(
      `INSERT INTO ${schema}.actors (key, state) SELECT * FROM UNNEST($1::text[], $2::jsonb[])`,
      [slice, slice.map((_, j) => JSON.stringify(actorState(i + j)))],
    )
  }
  await admin.query(`ANALYZE ${schema}.actors`)
  process.stderr.write('\n')

  const sequence = (length: number, seed: number) =>
    Array.from(zipfSequence(universe, 0.99, length, seed), (rank) => keys[rank] as string)
  const measured = sequence(reads, 2024)
  const warm = sequence(Math.min(reads, 5_000), 99)
  const latency = new Float64Array(reads)

  const pool = new pg.Pool({ connectionString: input.databaseUrl, max: inFlight })
  const redis = await connectRedis(input.redisUrl, 'tiered')
  const prefix = `bt${process.pid}`
  const l2tier: RedisTier = createRedisStore({ client: redis, prefix })
  let queries = 0
  const query = {
    name: 'bench_tiered_actor',
    text: `SELECT state FROM ${schema}.actors WHERE key = $1`,
  }
  const fetchActor = async (key: string): Promise<State | undefined> => {
    queries++
    const r = await pool.query<{ state: State }>({ ...query, values: [key] })
    return r.rows[0]?.state
  }

  const configs: Config[] = [
    { name: 'no cache (every read queries PostgreSQL)' },
    { name: 'TieredCache L1 only, 1% of keys', l1: 0.01 },
    { name: 'TieredCache L1 only, 10% of keys', l1: 0.1 },
    { name: 'TieredCache L1 1% + L2 Redis', l1: 0.01, l2: 'cold' },
    { name: 'TieredCache L1 10% + L2 Redis', l1: 0.1, l2: 'cold' },
    {
      name: 'TieredCache L1 1% + L2 Redis already warm (as if filled by another instance)',
      l1: 0.01,
      l2: 'warm',
    },
  ]
  const l2store = l2tier.namespace<State>(NS, { defaultTtl: TTL })
  const fill = Array.from({ length: Math.ceil(universe / 1000) }, (_, b) =>
    keys.slice(b * 1000, b * 1000 + 1000).map((key, j) => ({
      key,
      value: actorState(b * 1000 + j),
    })),
  )

  /** One cold run of a configuration over `seq`: a fresh cache, `inFlight` closed-loop readers. */
  const runOnce = async (config: Config, seq: readonly string[]): Promise<RunFigures> => {
    let cache: TieredCache | undefined
    let read: (key: string) => Promise<State | undefined> = fetchActor
    let loaderCalls = 0
    const mem = createMemCache({
      maxEntries: Math.round(universe * (config.l1 ?? 0.01)),
      maxSize: 1024 * 1024 * 1024,
      defaultTtl: TTL,
      cleanupInterval: 0,
    })
    if (config.l2 === 'warm') for (const batch of fill) await l2store.setMany(batch)
    if (config.l1 !== undefined) {
      cache = createTieredCache({ l1: mem, ...(config.l2 ? { l2: l2tier } : {}) })
      const ns = cache.namespace<State>(NS, {
        ttl: TTL,
        record: false,
        loader: (key) => {
          loaderCalls++
          return fetchActor(key)
        },
      })
      read = (key) => ns.get(key)
    }
    queries = 0
    const n = seq.length
    let next = 0
    let wrong = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < n; i = next++) {
        const key = seq[i] as string
        const t0 = performance.now()
        const v = await read(key)
        latency[i] = performance.now() - t0
        if (v?.id !== key) wrong++
      }
    }
    const t0 = performance.now()
    await Promise.all(Array.from({ length: inFlight }, worker))
    const ms = performance.now() - t0
    if (wrong > 0) throw new Error(`${config.name}: ${wrong} of ${n} reads returned a wrong value`)
    const sorted = latency.subarray(0, n).sort()
    const figures: RunFigures = {
      readsPerSec: (n * 1000) / ms,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      dbQueries: queries,
      l1: 0,
      joined: 0,
      l2: 0,
      loader: 1,
    }
    if (cache !== undefined) {
      const s = cache.stats().namespaces[NS] as NamespaceStats
      if (s.loads !== loaderCalls || s.misses !== 0 || s.errors !== 0 || queries !== loaderCalls)
        throw new Error(
          `${config.name}: stats disagree with the loader (loader calls ${loaderCalls}, queries ${queries}): ${JSON.stringify(s)}`,
        )
      const l1Hits = s.l1Hits
      const lower = s.lowerHits + s.recordHits + s.loads + s.misses + s.negativeHits
      figures.l1 = l1Hits / n
      figures.joined = (n - lower - l1Hits) / n
      figures.l2 = s.lowerHits / n
      figures.loader = s.loads / n
      await cache.close()
      if (config.l2) await l2store.clear()
    }
    await mem.close()
    return figures
  }

  const all: RunFigures[][] = configs.map(() => [])
  try {
    await l2store.clear()
    process.stderr.write('  read-through: warmup')
    for (const config of configs) await runOnce(config, warm)
    process.stderr.write('\n')
    for (let r = 0; r < runs; r++) {
      for (let j = 0; j < configs.length; j++) {
        const i = (j + r) % configs.length
        ;(all[i] as RunFigures[]).push(await runOnce(configs[i] as Config, measured))
      }
      progress('read-through')(r + 1, runs)
    }
    process.stderr.write('\n')
  } finally {
    await l2store.clear().catch(() => undefined)
    await redis.close()
    await pool.end()
  }

  const rows: ReadThroughRow[] = configs.map((c, i) => {
    const xs = all[i] as RunFigures[]
    const m = (f: (x: RunFigures) => number) => median(xs.map(f))
    return {
      name: c.name,
      readsPerSec: m((x) => x.readsPerSec),
      p50Ms: m((x) => x.p50Ms),
      p99Ms: m((x) => x.p99Ms),
      dbQueries: m((x) => x.dbQueries),
      l1: m((x) => x.l1),
      joined: m((x) => x.joined),
      l2: m((x) => x.l2),
      loader: m((x) => x.loader),
    }
  })
  const base = rows[0] as ReadThroughRow
  log(
    `\n## Read-through, Zipf s=0.99 over ${int(universe)} PostgreSQL rows (${int(reads)} reads, ` +
      `${inFlight} in flight, a fresh cache per run, median of ${runs} runs)\n`,
  )
  log(
    grid(
      [
        'configuration',
        'reads/s',
        'p50 ms',
        'p99 ms',
        'DB queries',
        'L1 hits',
        'joined in-flight load',
        'L2 hits',
        'loader',
        'DB queries saved',
        'throughput vs no cache',
      ],
      rows.map((r) => [
        r.name,
        int(r.readsPerSec),
        r.p50Ms.toFixed(3),
        r.p99Ms.toFixed(3),
        int(r.dbQueries),
        pct(r.l1),
        pct(r.joined),
        pct(r.l2),
        pct(r.loader),
        pct(1 - r.dbQueries / base.dbQueries),
        `${(r.readsPerSec / base.readsPerSec).toFixed(2)}x`,
      ]),
    ),
  )
  log(
    '\nL1 hits as the tiered stats count them; "joined" = reads ' +
      'minus L1 hits minus what lower tiers and the loader answered: reads that waited on a load of ' +
      'the same key already in flight (stampede protection).',
  )
  const rate = (i: number) => rows[i]?.readsPerSec ?? Number.NaN
  log(
    `cold L1 + L2 / L1 alone, same L1 size (target ≥ 0.9x): ${(rate(3) / rate(1)).toFixed(2)}x at 1%, ` +
      `${(rate(4) / rate(2)).toFixed(2)}x at 10%`,
  )
  return rows
}
