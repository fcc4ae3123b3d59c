import { createPrismaStore, migrate, type PrismaTier } from '@actor-cache/prisma-store'
import { connectPostgres, openPglite, type PrismaClient } from '@actor-cache/prisma-store/client'
import pg from 'pg'
import { type BenchResult, compare, table } from './harness.js'
import { actorState } from './workload.js'

/** Options of the L3 suite. */
export interface L3Options {
  /** @default process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' */
  url?: string
  rounds?: number
  log?: (line: string) => void
}

export interface L3Report {
  postgres: BenchResult[]
  pglite: BenchResult[]
  /** setMany rows/s at batch 100 and 1000 over single-row set rows/s (target ≥ 20). */
  batchOverSingle: { 100: number; 1000: number }
  /** setMany rows/s over raw pg UNNEST rows/s at the same batch size (target ≥ 0.8). */
  batchOverRaw: { 100: number; 1000: number }
}

const UNIVERSE = 10_000
const rowsOf = (results: BenchResult[], name: string): number =>
  results.find((r) => r.name === name)?.opsPerSec ?? Number.NaN

/** Write-through (one row per statement) against batched writes, on PostgreSQL and PGlite. */
export async function runL3Suite(options: L3Options = {}): Promise<L3Report> {
  const log = options.log ?? console.log
  const url = options.url ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
  const rounds = options.rounds ?? 5
  const schema = `ac_bench_${process.pid}`
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (error) {
    throw new Error(
      `the L3 benchmark needs PostgreSQL at ${url} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  await admin.query(`CREATE SCHEMA ${schema}`)
  const progress = (what: string) => (r: number, total: number) =>
    process.stderr.write(`\r  ${what}: round ${r}/${total}`)
  let postgresClient: PrismaClient | undefined
  let pgliteClient: PrismaClient | undefined
  const pool = new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${schema}` })
  try {
    postgresClient = await connectPostgres(url, { schema, max: 4 })
    await migrate(postgresClient)
    pgliteClient = await openPglite()
    await migrate(pgliteClient)

    // Versions only grow, so every write applies, as write-behind flushes do.
    let version = 0
    const cases = (tier: PrismaTier, label: string) => {
      const store = tier.namespace('derived_stats')
      let k = 0
      const next = () => k++ % UNIVERSE
      const batchCase = (size: number) => ({
        name: `${label} setMany, batch ${size}`,
        async run(n: number) {
          for (let done = 0; done < n; done += size) {
            const v = ++version
            await store.setMany(
              Array.from({ length: size }, () => {
                const i = next()
                return { key: `actor:${i}`, value: actorState(i), version: v, ttl: 600_000 }
              }),
            )
          }
        },
      })
      return [
        {
          name: `${label} set, one row per statement`,
          async run(n: number) {
            for (let j = 0; j < n; j++) {
              const i = next()
              await store.set(`actor:${i}`, actorState(i), { version: ++version, ttl: 600_000 })
            }
          },
        },
        batchCase(100),
        batchCase(1000),
      ]
    }
    // The same rows and guard as the store writes (envelope columns, expiry-aware version
    // check), with node-postgres directly: what a hand-written flusher would send.
    const rawCase = (size: number) => {
      let k = 0
      return {
        name: `raw pg UNNEST upsert, batch ${size}`,
        async run(n: number) {
          for (let done = 0; done < n; done += size) {
            const v = String(++version)
            const keys: string[] = []
            const vals: string[] = []
            const created: string[] = []
            const expires: string[] = []
            const now = Date.now()
            for (let j = 0; j < size; j++) {
              const i = k++ % UNIVERSE
              keys.push(`actor:${i}`)
              vals.push(JSON.stringify(actorState(i)))
              created.push(String(now))
              expires.push(String(now + 600_000))
            }
            await pool.query(
              `INSERT INTO ac_cache_entries AS e (namespace, key, value, version, created_at, expires_at)
               SELECT 'raw', k, v, $3::bigint, to_timestamp(c / 1000.0), to_timestamp(x / 1000.0)
                 FROM UNNEST($1::text[], $2::text[], $4::bigint[], $5::bigint[]) AS t(k, v, c, x)
               ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version,
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, updated_at = now()
               WHERE (CASE WHEN e.expires_at IS NOT NULL AND e.expires_at <= now() THEN 0 ELSE e.version END) <= EXCLUDED.version`,
              [keys, vals, v, created, expires],
            )
          }
        },
      }
    }

    log(`\n## L3 writes into PostgreSQL (${url}, schema ${schema}); ns/op is per row\n`)
    const postgres = await compare(
      [
        ...cases(createPrismaStore({ prisma: postgresClient, timeout: 30_000 }), 'postgres'),
        rawCase(100),
        rawCase(1000),
      ],
      { opsPerRound: 2_000, rounds, warmup: 1, onRound: progress('postgres') },
    )
    process.stderr.write('\n')
    log(table(postgres, 'postgres set, one row per statement'))

    log('\n## The same writes into embedded PGlite (in memory)\n')
    const pglite = await compare(
      cases(createPrismaStore({ prisma: pgliteClient, timeout: 30_000 }), 'pglite'),
      {
        opsPerRound: 2_000,
        rounds,
        warmup: 1,
        onRound: progress('pglite'),
      },
    )
    process.stderr.write('\n')
    log(table(pglite, 'pglite set, one row per statement'))

    const single = rowsOf(postgres, 'postgres set, one row per statement')
    const report: L3Report = {
      postgres,
      pglite,
      batchOverSingle: {
        100: rowsOf(postgres, 'postgres setMany, batch 100') / single,
        1000: rowsOf(postgres, 'postgres setMany, batch 1000') / single,
      },
      batchOverRaw: {
        100:
          rowsOf(postgres, 'postgres setMany, batch 100') /
          rowsOf(postgres, 'raw pg UNNEST upsert, batch 100'),
        1000:
          rowsOf(postgres, 'postgres setMany, batch 1000') /
          rowsOf(postgres, 'raw pg UNNEST upsert, batch 1000'),
      },
    }
    log(
      `\nsetMany rows/s over single-row set: ${report.batchOverSingle[100].toFixed(1)}x at batch 100, ` +
        `${report.batchOverSingle[1000].toFixed(1)}x at batch 1000 (target ≥ 20x); over raw pg UNNEST: ` +
        `${report.batchOverRaw[100].toFixed(2)}x at 100, ${report.batchOverRaw[1000].toFixed(2)}x at 1000 (target ≥ 0.8x)`,
    )
    const pgSingle = rowsOf(pglite, 'pglite set, one row per statement')
    log(
      `PGlite / PostgreSQL rows/s: single ${(pgSingle / single).toFixed(2)}x, batch 1000 ` +
        `${(rowsOf(pglite, 'pglite setMany, batch 1000') / rowsOf(postgres, 'postgres setMany, batch 1000')).toFixed(2)}x`,
    )
    return report
  } finally {
    await postgresClient?.$disconnect()
    await pgliteClient?.$disconnect()
    await pool.end()
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  }
}
