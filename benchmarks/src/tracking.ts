import { createMemCache } from '@actor-cache/memcache'
import { createPrismaChangeLog, createPrismaStore, migrate } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import { createStateTracker } from '@actor-cache/state-tracker'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { connectPostgresAdmin } from './connect-postgres.js'
import { type BenchResult, compare, table } from './harness.js'
import { actorState } from './workload.js'

/** Options of the tracking suite. */
export interface TrackingOptions {
  /** @default process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' */
  url?: string
  rounds?: number
  log?: (line: string) => void
}

export interface TrackingReport {
  writes: BenchResult[]
  /** Tracked over untracked write-through rows/s (target ≥ 0.7). */
  trackedOverUntracked: number
  behind: BenchResult[]
  /** Tracked over untracked write-behind rows/s, writes and their flush (target ≥ 0.8). */
  behindTrackedOverUntracked: number
  /** Records per second `verify` checks, on a chain of 1,000 records. */
  verifyRecordsPerSec: number
  /** Median ms of `getStateAt` at version 1,000 of a 1,000-version chain. */
  stateAtMs: number
}

const ACTORS = 1_000
const CHAIN = 1_000

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1] as number
}

async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

/** Tracked vs untracked write-through into PostgreSQL; verify and getStateAt on a long chain. */
export async function runTrackingSuite(options: TrackingOptions = {}): Promise<TrackingReport> {
  const log = options.log ?? console.log
  const url = options.url ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
  const schema = `ac_bench_tracking_${process.pid}`
  const admin = await connectPostgresAdmin(url, 'tracking')
  await admin.query(`CREATE SCHEMA ${schema}`)
  let prisma: PrismaClient | undefined
  try {
    prisma = await connectPostgres(url, { schema, max: 4 })
    await migrate(prisma)
    const tracker = createStateTracker({
      log: createPrismaChangeLog({ prisma }),
      systemId: 'bench',
    })
    const l3 = createPrismaStore({ prisma })
    const l1 = createMemCache({ maxSize: 64 * 1024 * 1024 })
    const policy = { strategy: 'write_through', ttl: 600_000 } as const
    const behindPolicy = { strategy: 'write_behind', ttl: 600_000 } as const
    const cache = createTieredCache({
      l1,
      l3,
      namespaces: {
        tracked: policy,
        untracked: policy,
        tracked_wb: behindPolicy,
        untracked_wb: behindPolicy,
      },
      writeBehind: { autoStart: false },
      tracking: tracker.writeTracking(['tracked', 'tracked_wb']),
    })
    const tracked = cache.namespace('tracked')
    const untracked = cache.namespace('untracked')
    const raw = l3.namespace('raw')
    let k = 0
    const next = () => k++ % ACTORS
    const author = { userId: 'user:bench' }
    log('\n## State tracking: write-through into PostgreSQL, one write in flight\n')
    const writes = await compare(
      [
        {
          name: 'PrismaStore.set (no cache)',
          async run(n: number) {
            for (let j = 0; j < n; j++) await raw.set(`actor:${next()}`, actorState(j))
          },
        },
        {
          name: 'TieredCache set, untracked',
          async run(n: number) {
            for (let j = 0; j < n; j++) await untracked.set(`actor:${next()}`, actorState(j))
          },
        },
        {
          name: 'TieredCache set, tracked',
          async run(n: number) {
            for (let j = 0; j < n; j++) await tracked.set(`actor:${next()}`, actorState(j), author)
          },
        },
      ],
      {
        opsPerRound: 300,
        rounds: options.rounds ?? 7,
        warmup: 1,
        onRound: (r, t) => process.stderr.write(`\r  writes: round ${r}/${t}`),
      },
    )
    process.stderr.write('\n')
    log(table(writes, 'TieredCache set, untracked'))
    const rate = (name: string) => writes.find((w) => w.name === name)?.opsPerSec ?? Number.NaN
    const trackedOverUntracked =
      rate('TieredCache set, tracked') / rate('TieredCache set, untracked')

    const behind = await writeBehindRounds(cache, author, options, log)
    const behindRate = (name: string) =>
      behind.find((w) => w.name === name)?.opsPerSec ?? Number.NaN
    const behindTrackedOverUntracked =
      behindRate('write-behind, tracked') / behindRate('write-behind, untracked')

    // a chain of 1,000 versions
    const entity = 'actor:long-chain'
    for (let v = 0; v < CHAIN; v++) await tracked.set(entity, actorState(v), author)
    const verifyMs: number[] = []
    const stateMs: number[] = []
    for (let r = 0; r < (options.rounds ?? 7); r++) {
      verifyMs.push(await timeMs(() => tracker.verify('tracked', entity)))
      stateMs.push(await timeMs(() => tracker.getStateAt('tracked', entity, { version: CHAIN })))
    }
    const verifyRecordsPerSec = CHAIN / (median(verifyMs) / 1000)
    const stateAtMs = median(stateMs)
    log('')
    log(
      `- tracked over untracked write-through: ${trackedOverUntracked.toFixed(2)}x rows/s (target ≥ 0.7x)`,
    )
    log(
      `- tracked over untracked write-behind (writes and their flush): ${behindTrackedOverUntracked.toFixed(2)}x rows/s (target ≥ 0.8x)`,
    )
    log(
      `- verify: ${Math.round(verifyRecordsPerSec).toLocaleString('en-US')} records/s (chain of ${CHAIN}, history read included)`,
    )
    log(`- getStateAt at version ${CHAIN}: ${stateAtMs.toFixed(1)} ms (median)`)
    await cache.close()
    await l1.close()
    await l3.close()
    return {
      writes,
      trackedOverUntracked,
      behind,
      behindTrackedOverUntracked,
      verifyRecordsPerSec,
      stateAtMs,
    }
  } finally {
    await prisma?.$disconnect()
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

/**
 * Write-behind with and without tracking: each round queues one write to each of 300 actors and
 * flushes them (the flusher's batches), so rows/s counts rows persisted, their records included.
 */
async function writeBehindRounds(
  cache: TieredCache,
  author: { userId: string },
  options: TrackingOptions,
  log: (line: string) => void,
): Promise<BenchResult[]> {
  const tracked = cache.namespace('tracked_wb')
  const untracked = cache.namespace('untracked_wb')
  let k = 0
  const next = () => k++ % ACTORS
  log('\n## State tracking: write-behind into PostgreSQL, writes and their flush\n')
  const results = await compare(
    [
      {
        name: 'write-behind, untracked',
        async run(n: number) {
          for (let j = 0; j < n; j++) await untracked.set(`actor:${next()}`, actorState(j))
          await cache.flush()
        },
      },
      {
        name: 'write-behind, tracked',
        async run(n: number) {
          for (let j = 0; j < n; j++) await tracked.set(`actor:${next()}`, actorState(j), author)
          await cache.flush()
        },
      },
    ],
    {
      opsPerRound: 300,
      rounds: options.rounds ?? 7,
      warmup: 1,
      onRound: (r, t) => process.stderr.write(`\r  write-behind: round ${r}/${t}`),
    },
  )
  process.stderr.write('\n')
  log(table(results, 'write-behind, untracked'))
  return results
}
