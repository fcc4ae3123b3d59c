import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, migrate, type PrismaTier } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import { createRedisStore, type RedisTier, type SingleClient } from '@actor-cache/redis'
import { createTieredCache, type NamespaceStats, type TieredCache } from '@actor-cache/strategies'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { createCache } from 'cache-manager'
import { LRUCache } from 'lru-cache'
import pg from 'pg'
import { createClient } from 'redis'
import { awaitedCase, type BenchResult, compare, table } from './harness.js'
import { actorState, zipfSequence } from './workload.js'

type State = ReturnType<typeof actorState>

/** Options of the tiered suite. */
export interface TieredOptions {
  /** @default process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' */
  databaseUrl?: string
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string
  /** Distinct keys of the hit path and of the read-through table. @default 100_000 */
  universe?: number
  /** Hit path: operations per case per round. @default 50_000 */
  opsPerRound?: number
  /** Hit path: measured rounds. @default 7 */
  rounds?: number
  /** Read-through: reads per run. @default 50_000 */
  reads?: number
  /** Read-through: reads in flight. @default 16 */
  inFlight?: number
  /** Writes: distinct keys written per run. @default 5_000 */
  writes?: number
  /** Cold runs per configuration of the read-through and write cases (median reported). @default 3 */
  runs?: number
  log?: (line: string) => void
}

/** One configuration of the read-through workload (medians over the runs). */
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

/** One write case (medians over the runs). */
export interface WriteRow {
  name: string
  rowsPerSec: number
  ms: number
}

export interface TieredReport {
  hit: BenchResult[]
  /** tiered `ns.get` L1 hit / awaited lru-cache get (target ≤ 1.5). */
  hitRatioToAwaitedLru: number
  /** How many times faster than bentocache's memory get (target ≥ 10), per serialize mode. */
  fasterThanBentocache: { serialize: number; noSerialize: number }
  readThrough: ReadThroughRow[]
  writes: WriteRow[]
  /** write_behind rows/s over write_through rows/s (target ≥ 20), for new keys and for updates. */
  writeBehindOverThrough: { newKeys: number; updates: number }
}

const TTL = 300_000
const NS = 'primary_core'

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const quantile = (sorted: Float64Array, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const pct = (f: number): string => `${(f * 100).toFixed(1)}%`

/** A Markdown table; the first column is left-aligned, the others right-aligned. */
function grid(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] as string).length)),
  )
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`
  return [
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n')
}

const progress = (what: string) => (r: number, total: number) =>
  process.stderr.write(`\r  ${what}: round ${r}/${total}`)

/**
 * The public TieredCache against the raw libraries and its peers: the L1 hit path, a read-through
 * Zipf workload over a real PostgreSQL table, and write-behind against write-through into
 * PostgreSQL through the Prisma store.
 */
export async function runTieredSuite(options: TieredOptions = {}): Promise<TieredReport> {
  const log = options.log ?? console.log
  const databaseUrl =
    options.databaseUrl ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const universe = options.universe ?? 100_000
  const runs = options.runs ?? 3

  const hit = await hitPath(log, universe, options.opsPerRound ?? 50_000, options.rounds ?? 7)

  const schema = `bench_tiered_${process.pid}`
  const admin = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (error) {
    throw new Error(
      `the tiered benchmark needs PostgreSQL at ${databaseUrl} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  await admin.query(`CREATE SCHEMA ${schema}`)
  try {
    const readThrough = await readThroughZipf(log, {
      databaseUrl,
      redisUrl,
      schema,
      admin,
      universe,
      reads: options.reads ?? 50_000,
      inFlight: options.inFlight ?? 16,
      runs,
    })
    const writes = await writeBehindVsThrough(log, {
      databaseUrl,
      schema,
      admin,
      n: options.writes ?? 5_000,
      runs,
    })
    const rate = (name: string) => writes.find((w) => w.name === name)?.rowsPerSec ?? Number.NaN
    const writeBehindOverThrough = {
      newKeys: rate(WB) / rate(WT),
      updates: rate(WB_UPDATE) / rate(WT_UPDATE),
    }
    return { ...hit, readThrough, writes, writeBehindOverThrough }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  }
}

// -----------------------------------------------------------------------------------------------
// 1. L1 hit path
// -----------------------------------------------------------------------------------------------

const TIERED_GET = 'tiered ns.get (L1 hit)'
const LRU_AWAITED = 'lru-cache get (ttl), awaited'
const BENTO_SER = 'bentocache get (memory, serialize: true)'
const BENTO_RAW = 'bentocache get (memory, serialize: false)'
const CACHE_MANAGER = 'cache-manager 7 get (Keyv memory)'

async function hitPath(
  log: (line: string) => void,
  universe: number,
  opsPerRound: number,
  rounds: number,
): Promise<Pick<TieredReport, 'hit' | 'hitRatioToAwaitedLru' | 'fasterThanBentocache'>> {
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  const values = Array.from({ length: universe }, (_, i) => actorState(i))
  const seq = zipfSequence(universe, 0.99, 1 << 20, 7)
  const accessKeys = Array.from(seq, (rank) => keys[rank] as string)
  const mask = accessKeys.length - 1

  const map = new Map<string, State>()
  const lruTtl = new LRUCache<string, State>({ max: universe * 2, ttl: TTL })
  const mem = createMemCache({ maxSize: 1024 * 1024 * 1024, defaultTtl: TTL, cleanupInterval: 0 })
  let loaderCalls = 0
  const cache = createTieredCache({ l1: mem })
  const ns = cache.namespace<State>(NS, {
    ttl: TTL,
    record: false,
    loader: async () => {
      loaderCalls++
      return undefined
    },
  })
  const memStore = mem.namespace<State>(NS)
  const bento = (serialize: boolean) =>
    new BentoCache({
      default: 'memory',
      stores: {
        memory: bentostore().useL1Layer(memoryDriver({ maxItems: universe * 2, serialize })),
      },
    })
  const bentoSer = bento(true)
  const bentoRaw = bento(false)
  const manager = createCache({ ttl: TTL })

  process.stderr.write('  loading keys...')
  for (let i = 0; i < universe; i++) {
    const k = keys[i] as string
    const v = values[i] as State
    map.set(k, v)
    lruTtl.set(k, v)
    await ns.set(k, v)
    await bentoSer.set({ key: k, value: v, ttl: TTL })
    await bentoRaw.set({ key: k, value: v, ttl: TTL })
    await manager.set(k, v, TTL)
  }
  // every contender must hold every key before timing starts
  for (let i = 0; i < universe; i += 997) {
    const k = keys[i] as string
    const got = [
      (await ns.get(k))?.id,
      (await bentoSer.get<State>({ key: k }))?.id,
      (await bentoRaw.get<State>({ key: k }))?.id,
      (await manager.get<State>(k))?.id,
    ]
    if (got.some((id) => id !== k))
      throw new Error(`pre-warm check failed for ${k}: ${JSON.stringify(got)}`)
  }
  const statsBefore = cache.stats().namespaces[NS] as NamespaceStats
  process.stderr.write('\n')

  const cursor = (): (() => string) => {
    let i = 0
    return () => accessKeys[i++ & mask] as string
  }
  const asyncCase = (name: string, get: (k: string) => Promise<unknown>) =>
    awaitedCase(name, cursor(), get)

  log(`\n## Tiered L1 hit path (Zipf s=0.99 over ${int(universe)} resident keys, TTL on)\n`)
  const results = await compare(
    [
      asyncCase('Map.get, awaited', async (k) => map.get(k)),
      asyncCase(LRU_AWAITED, async (k) => lruTtl.get(k)),
      asyncCase('memcache get, awaited (the L1 underneath)', (k) => memStore.get(k)),
      asyncCase(TIERED_GET, (k) => ns.get(k)),
      asyncCase('tiered ns.getOrSet (L1 hit)', (k) => ns.getOrSet(k)),
      asyncCase(BENTO_SER, (k) => bentoSer.get({ key: k })),
      asyncCase(BENTO_RAW, (k) => bentoRaw.get({ key: k })),
      asyncCase(CACHE_MANAGER, (k) => manager.get(k)),
    ],
    { opsPerRound, rounds, warmup: 2, onRound: progress('hit path') },
  )
  process.stderr.write('\n')
  log(table(results, LRU_AWAITED))

  const after = cache.stats().namespaces[NS] as NamespaceStats
  const slowPath =
    after.lowerHits +
    after.recordHits +
    after.loads +
    after.misses +
    after.negativeHits -
    (statsBefore.lowerHits +
      statsBefore.recordHits +
      statsBefore.loads +
      statsBefore.misses +
      statsBefore.negativeHits)
  log(
    `\ncheck: tiered reads that missed L1 during timing = ${slowPath}, loader calls = ${loaderCalls}` +
      (slowPath === 0 && loaderCalls === 0 ? ' (ok: every read was an L1 hit)' : ' (UNEXPECTED)'),
  )

  const cost = (name: string) => results.find((r) => r.name === name)?.nsPerOp ?? Number.NaN
  const hitRatioToAwaitedLru = cost(TIERED_GET) / cost(LRU_AWAITED)
  const fasterThanBentocache = {
    serialize: cost(BENTO_SER) / cost(TIERED_GET),
    noSerialize: cost(BENTO_RAW) / cost(TIERED_GET),
  }
  log(
    `tiered ns.get L1 hit = ${hitRatioToAwaitedLru.toFixed(2)}x an awaited lru-cache get (target ≤ 1.5x); ` +
      `${fasterThanBentocache.serialize.toFixed(1)}x faster than bentocache (serialize: true), ` +
      `${fasterThanBentocache.noSerialize.toFixed(1)}x faster than bentocache (serialize: false) (target ≥ 10x); ` +
      `${(cost(CACHE_MANAGER) / cost(TIERED_GET)).toFixed(1)}x faster than cache-manager`,
  )

  await cache.close()
  await mem.close()
  await bentoSer.disconnectAll()
  await bentoRaw.disconnectAll()
  await manager.disconnect()
  return { hit: results, hitRatioToAwaitedLru, fasterThanBentocache }
}

// -----------------------------------------------------------------------------------------------
// 2. Read-through Zipf workload over PostgreSQL
// -----------------------------------------------------------------------------------------------

interface ReadThroughInput {
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

async function connectRedis(url: string): Promise<SingleClient> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2000 } })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `the tiered benchmark needs Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as unknown as SingleClient
}

async function readThroughZipf(
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
  const redis = await connectRedis(input.redisUrl)
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
  return rows
}

// -----------------------------------------------------------------------------------------------
// 3. Write-behind vs write-through into PostgreSQL
// -----------------------------------------------------------------------------------------------

const WT = 'write_through, new keys (one upsert per write)'
const WB = 'write_behind, new keys (batch 500) + flush'
const WT_UPDATE = 'write_through, updates of cached keys'
const WB_UPDATE = 'write_behind, updates of cached keys + flush'
const RAW = 'raw PrismaStore.setMany, batch 500 (no cache)'

interface WriteInput {
  databaseUrl: string
  schema: string
  admin: pg.Client
  n: number
  runs: number
}

interface WriteCase {
  name: string
  /**
   * The rows the run leaves: `hp` of the probe and the version every row must have (`acked`: the
   * version each `set` returned, as write-behind gives keys the caches do not hold clock versions).
   */
  expect: { values: readonly State[]; version: number | 'acked' }
  run(namespace: string, count: number): Promise<number>
}

/** The version each tiered `set` returned, by namespace and key (checked against PostgreSQL). */
const ackedVersions = new Map<string, Map<string, number>>()

async function writeBehindVsThrough(
  log: (line: string) => void,
  input: WriteInput,
): Promise<WriteRow[]> {
  const { schema, admin, n, runs } = input
  const keys = Array.from({ length: n }, (_, i) => `actor:${i}`)
  const values = Array.from({ length: n }, (_, i) => actorState(i))
  const updated = Array.from({ length: n }, (_, i) => ({ ...actorState(i), hp: 10_000 + i }))
  const batches = Array.from({ length: Math.ceil(n / 500) }, (_, b) =>
    keys.slice(b * 500, b * 500 + 500).map((key, j) => ({
      key,
      value: values[b * 500 + j] as State,
      version: 1,
    })),
  )
  let prisma: PrismaClient | undefined
  const checks: string[] = []
  try {
    prisma = await connectPostgres(input.databaseUrl, { schema, max: 4 })
    await migrate(prisma)
    const l3: PrismaTier = createPrismaStore({ prisma, timeout: 30_000 })

    /** Every row is in PostgreSQL with the expected version, and a probe row reads back intact. */
    const verify = async (label: string, namespace: string, c: WriteCase, count: number) => {
      const r = await admin.query<{ key: string; version: string }>(
        `SELECT key, version::text AS version FROM ${schema}.ac_cache_entries WHERE namespace = $1`,
        [namespace],
      )
      const want = c.expect.version
      const acked = ackedVersions.get(namespace)
      const rows = r.rows.length
      const versions = r.rows.filter((row) =>
        want === 'acked'
          ? acked?.get(row.key) === Number(row.version)
          : Number(row.version) === want,
      ).length
      const at = count >> 1
      const probe = keys[at] as string
      const expected = c.expect.values[at] as State
      const p = await admin.query<{ value: string }>(
        `SELECT value FROM ${schema}.ac_cache_entries WHERE namespace = $1 AND key = $2`,
        [namespace, probe],
      )
      const got = p.rows[0] ? (JSON.parse(p.rows[0].value) as State) : undefined
      const intact = got?.id === expected.id && got.hp === expected.hp
      const ok = rows === count && versions === count && intact
      const line =
        `${label}: ${int(rows)} rows in PostgreSQL (expected ${int(count)}), ` +
        `${int(versions)} at version ${c.expect.version}, ${probe} ` +
        (intact ? 'reads back intact' : `reads back as ${JSON.stringify(got)}`)
      checks.push(`${ok ? 'ok  ' : 'FAIL'} ${line}`)
      if (!ok) throw new Error(`write check failed: ${line}`)
    }

    /**
     * A fresh cache and namespace per run. With `updates`, the rows exist first and the namespace
     * has read them (so L1 holds them, as after loading an actor); both outside the timed region.
     * Returns the ms from the first write until `flush` returns, when every row is in PostgreSQL.
     */
    const tieredRun =
      (strategy: 'write_through' | 'write_behind', updates: boolean) =>
      async (namespace: string, count: number): Promise<number> => {
        const mem = createMemCache({
          maxSize: 256 * 1024 * 1024,
          defaultTtl: TTL,
          cleanupInterval: 0,
        })
        const cache = createTieredCache({
          l1: mem,
          l3,
          writeBehind: { batchSize: 500, interval: 100, linger: 10 },
        })
        const ns = cache.namespace<State>(namespace, { strategy, ttl: TTL })
        const input = updates ? updated : values
        try {
          if (updates) {
            await rawRun(namespace, count)
            const read = await ns.getMany(keys.slice(0, count))
            const missing = read.filter((v, i) => v?.id !== keys[i]).length
            if (missing > 0)
              throw new Error(`${namespace}: ${missing} preloaded rows not read back`)
          }
          const before = cache.stats().writeBehind?.written ?? 0
          const t0 = performance.now()
          const acked = new Map<string, number>()
          ackedVersions.set(namespace, acked)
          for (let i = 0; i < count; i++) {
            const key = keys[i] as string
            acked.set(key, (await ns.set(key, input[i] as State)).version)
          }
          await cache.flush()
          const ms = performance.now() - t0
          const wb = cache.stats().writeBehind
          if (
            strategy === 'write_behind' &&
            ((wb?.written ?? 0) - before !== count || wb?.deadLettered !== 0)
          )
            throw new Error(`write_behind flusher: ${JSON.stringify(wb)} after ${count} writes`)
          return ms
        } finally {
          await cache.close()
          await mem.close()
        }
      }
    async function rawRun(namespace: string, count: number): Promise<number> {
      const store = l3.namespace<State>(namespace)
      const t0 = performance.now()
      for (let done = 0, b = 0; done < count; done += 500, b++) {
        const batch = batches[b] as { key: string; value: State; version: number }[]
        await store.setMany(done + 500 <= count ? batch : batch.slice(0, count - done))
      }
      return performance.now() - t0
    }
    const inserted = { values, version: 1 }
    const cases: WriteCase[] = [
      { name: WT, expect: inserted, run: tieredRun('write_through', false) },
      { name: WB, expect: { values, version: 'acked' }, run: tieredRun('write_behind', false) },
      {
        name: WT_UPDATE,
        expect: { values: updated, version: 2 },
        run: tieredRun('write_through', true),
      },
      {
        // rows seeded at version 1 (below the clock range): write-behind updates take clock versions
        name: WB_UPDATE,
        expect: { values: updated, version: 'acked' },
        run: tieredRun('write_behind', true),
      },
      { name: RAW, expect: inserted, run: rawRun },
    ]

    process.stderr.write('  writes: warmup')
    for (let i = 0; i < cases.length; i++) await (cases[i] as WriteCase).run(`warm_${i}`, 500)
    process.stderr.write('\n')
    const ms: number[][] = cases.map(() => [])
    for (let r = 0; r < runs; r++) {
      for (let j = 0; j < cases.length; j++) {
        const i = (j + r) % cases.length
        const c = cases[i] as WriteCase
        const namespace = `w${i}_r${r}`
        ;(ms[i] as number[]).push(await c.run(namespace, n))
        await verify(`${c.name}, run ${r + 1}`, namespace, c, n)
      }
      progress('writes')(r + 1, runs)
    }
    process.stderr.write('\n')

    const rows: WriteRow[] = cases.map((c, i) => {
      const t = median(ms[i] as number[])
      return { name: c.name, ms: t, rowsPerSec: (n * 1000) / t }
    })
    const rate = (name: string) => rows.find((w) => w.name === name)?.rowsPerSec ?? Number.NaN
    log(
      `\n## Writes into PostgreSQL through TieredCache ns.set and the Prisma store (${int(n)} ` +
        `distinct keys per run, sequential awaited sets, timed until every row is in PostgreSQL, ` +
        `median of ${runs} runs)\n`,
    )
    log(
      grid(
        ['case', 'ms (median)', 'rows/s', 'rows/s vs write_through, new keys'],
        rows.map((w) => [
          w.name,
          w.ms.toFixed(1),
          int(w.rowsPerSec),
          `${(w.rowsPerSec / rate(WT)).toFixed(2)}x`,
        ]),
      ),
    )
    log(
      `\nwrite_behind / write_through rows/s: new keys ${(rate(WB) / rate(WT)).toFixed(1)}x, ` +
        `updates of cached keys ${(rate(WB_UPDATE) / rate(WT_UPDATE)).toFixed(1)}x (target ≥ 20x); ` +
        `write_behind / raw setMany at the flusher's batch size: new keys ` +
        `${(rate(WB) / rate(RAW)).toFixed(2)}x, updates ${(rate(WB_UPDATE) / rate(RAW)).toFixed(2)}x`,
    )
    log('')
    for (const line of checks) log(`check: ${line}`)
    return rows
  } finally {
    await prisma?.$disconnect()
  }
}
