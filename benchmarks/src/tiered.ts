import { connectPostgresAdmin } from './connect-postgres.js'
import { type ReadThroughRow, readThroughZipf } from './read-through.js'
import { type HitPathReport, hitPath } from './tiered-hit.js'
import { type TwoTierReport, twoTierVsBentocache } from './two-tier.js'
import { WB, WB_UPDATE, type WriteRow, WT, WT_UPDATE, writeBehindVsThrough } from './write-paths.js'

export type { ReadThroughRow } from './read-through.js'
export type { WriteRow } from './write-paths.js'

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

/** Everything the tiered suite measured. */
export interface TieredReport extends HitPathReport {
  twoTier: TwoTierReport
  readThrough: ReadThroughRow[]
  writes: WriteRow[]
  /** write_behind rows/s over write_through rows/s (target ≥ 20), for new keys and for updates. */
  writeBehindOverThrough: { newKeys: number; updates: number }
}

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

  const twoTier = await twoTierVsBentocache(log, { redisUrl, rounds: options.rounds ?? 7 })

  const schema = `bench_tiered_${process.pid}`
  const admin = await connectPostgresAdmin(databaseUrl, 'tiered')
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
    return { ...hit, twoTier, readThrough, writes, writeBehindOverThrough }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  }
}
