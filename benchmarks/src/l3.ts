import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, migrate, type PrismaTier } from '@actor-cache/prisma-store'
import { connectPostgres, openPglite, PrismaClient } from '@actor-cache/prisma-store/client'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { connectPostgresAdmin } from './connect-postgres.js'
import { type BenchCase, type BenchResult, compare, table } from './harness.js'
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
  /** Single-row statements, one at a time, next to raw `pg` sending the same statement. */
  single: BenchResult[]
  /** Each store case's ops/s over raw pg's, simple and prepared (targets in {@link SINGLE_TARGETS}). */
  singleOverRaw: { case: string; simple: number; prepared: number; target: number }[]
}

const UNIVERSE = 10_000
const rowsOf = (results: BenchResult[], name: string): number =>
  results.find((r) => r.name === name)?.opsPerSec ?? Number.NaN

/** The SQL text of a store's `set`, compare-and-set and `get`, as it reaches `pg`. */
type Statements = Record<'set' | 'cas' | 'get', string>
type State = ReturnType<typeof actorState>
const TTL = 600_000
/** Keys of the single-row cases (written once before timing, so every CAS and read finds one). */
const SINGLE_KEYS = 1_000

/**
 * A PrismaClient the way a user builds one, over a pool this suite holds, and the statements of
 * the store on it, captured where Prisma hands them to `pg`: the raw cases send exactly that text.
 */
async function userBuiltClient(
  url: string,
  schema: string,
): Promise<{ prisma: PrismaClient; pool: pg.Pool; sql: Statements }> {
  const pool = new pg.Pool({ connectionString: url, max: 4, options: `-c search_path=${schema}` })
  const seen: string[] = []
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown
  ;(pool as { query: unknown }).query = (...args: unknown[]) => {
    const text = (args[0] as { text?: unknown } | undefined)?.text
    if (typeof text === 'string') seen.push(text)
    return query(...args)
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { schema }) })
  const store = createPrismaStore({ prisma }).namespace<State>('capture')
  const first = async (call: () => Promise<unknown>): Promise<string> => {
    seen.length = 0
    await call()
    if (seen[0] === undefined) throw new Error('no statement reached pg')
    return seen[0]
  }
  const value = actorState(0)
  const set = await first(() => store.set('actor:0', value, { ttl: TTL }))
  const cas = await first(() => store.set('actor:0', value, { expectedVersion: 1, ttl: TTL }))
  const get = await first(() => store.get('actor:0'))
  ;(pool as { query: unknown }).query = query
  return { prisma, pool, sql: { set, cas, get } }
}

/** The parameters the store binds to its write statements, for a raw client to send. */
function writeParams(namespace: string, key: string, value: State, version?: number): unknown[] {
  const now = new Date()
  const params = [namespace, key, JSON.stringify(value), 't', now, new Date(+now + TTL), [], now]
  return version === undefined ? params : [...params, String(version)]
}

/** A case that awaits `op(i)` for i = 0, 1, ... (modulo {@link SINGLE_KEYS}), one at a time. */
function loop(name: string, op: (i: number) => Promise<unknown>): BenchCase {
  let k = 0
  return {
    name,
    async run(n: number) {
      for (let j = 0; j < n; j++) await op(k++ % SINGLE_KEYS)
    },
  }
}

/** Raw `pg` sending the store's statements: unnamed (parsed every time) and named prepared. */
function rawCases(pool: pg.Pool, sql: Statements): BenchCase[] {
  return (['simple', 'prepared'] as const).flatMap((style) => {
    const named = (what: string) => (style === 'simple' ? {} : { name: `bench_${what}` })
    const versions = new Array<number>(SINGLE_KEYS).fill(1)
    return [
      loop(`raw pg set, ${style}`, async (i) => {
        const values = writeParams(`raw_set_${style}`, `actor:${i}`, actorState(i))
        await pool.query({ text: sql.set, values, ...named('set') })
      }),
      loop(`raw pg compare-and-set, ${style}`, async (i) => {
        const values = writeParams(`raw_cas_${style}`, `actor:${i}`, actorState(i), versions[i])
        const r = await pool.query({ text: sql.cas, values, ...named('cas') })
        versions[i] = Number(r.rows[0]?.applied)
      }),
      loop(`raw pg get, ${style}`, async (i) => {
        const values = ['reads', `actor:${i}`, new Date()]
        const r = await pool.query({ text: sql.get, values, ...named('get') })
        if (r.rows.length !== 1) throw new Error(`raw get: actor:${i} missing`)
      }),
    ]
  })
}

/** The store's single-row calls on `tier`, named with `label`, in namespaces ending in `id`. */
function storeCases(tier: PrismaTier, label: string, id: string): BenchCase[] {
  const set = tier.namespace<State>(`single_set_${id}`)
  const cas = tier.namespace<State>(`single_cas_${id}`)
  const reads = tier.namespace<State>('reads')
  const versions = new Array<number>(SINGLE_KEYS).fill(1)
  return [
    loop(`PrismaStore.set, ${label}`, (i) => set.set(`actor:${i}`, actorState(i), { ttl: TTL })),
    loop(`PrismaStore.set expectedVersion, ${label}`, async (i) => {
      const expectedVersion = versions[i] as number
      versions[i] = (
        await cas.set(`actor:${i}`, actorState(i), { expectedVersion, ttl: TTL })
      ).version
    }),
    loop(`PrismaStore.get, ${label}`, async (i) => {
      if ((await reads.get(`actor:${i}`)) === undefined) throw new Error(`get: actor:${i} missing`)
    }),
  ]
}

/** A write_through namespace of `cache` whose `ns.set` each case awaits. */
function nsSetCase(cache: TieredCache, label: string, namespace: string): BenchCase {
  const ns = cache.namespace<State>(namespace, { strategy: 'write_through', ttl: TTL })
  return loop(`TieredCache ns.set write_through, ${label}`, (i) =>
    ns.set(`actor:${i}`, actorState(i)),
  )
}

/** Each store case, the raw case it is held against (simple and prepared), and its target. */
export const SINGLE_TARGETS = [
  ['PrismaStore.set, connectPostgres', 'raw pg set', 0.8],
  ['PrismaStore.set expectedVersion, connectPostgres', 'raw pg compare-and-set', 0.8],
  ['PrismaStore.get, connectPostgres', 'raw pg get', 0.8],
  ['TieredCache ns.set write_through, L3 only', 'raw pg set', 0.7],
  ['TieredCache ns.set write_through, L1 + L3', 'raw pg set', 0.7],
  ['PrismaStore.set, user-built client', 'raw pg set', 0],
  ['PrismaStore.get, user-built client', 'raw pg get', 0],
] as const

/** Ops/s of each case of {@link SINGLE_TARGETS} over its raw case's, logged. */
function singleRatios(
  single: BenchResult[],
  log: (line: string) => void,
): L3Report['singleOverRaw'] {
  log('')
  return SINGLE_TARGETS.map(([name, raw, target]) => {
    const simple = rowsOf(single, name) / rowsOf(single, `${raw}, simple`)
    const prepared = rowsOf(single, name) / rowsOf(single, `${raw}, prepared`)
    log(
      `${name} / ${raw}: ${simple.toFixed(2)}x simple, ${prepared.toFixed(2)}x prepared` +
        (target > 0 ? ` (target ≥ ${target}x)` : ''),
    )
    return { case: name, simple, prepared, target }
  })
}

/** Single-row statements side by side: raw pg, the store on both paths, write-through ns.set. */
async function runSingleRow(
  log: (line: string) => void,
  input: { url: string; schema: string; direct: PrismaTier; rounds: number },
): Promise<Pick<L3Report, 'single' | 'singleOverRaw'>> {
  const { prisma, pool, sql } = await userBuiltClient(input.url, input.schema)
  const mem = createMemCache({ maxSize: 64 * 1024 * 1024, defaultTtl: TTL, cleanupInterval: 0 })
  const l3only = createTieredCache({ l3: input.direct })
  const l1l3 = createTieredCache({ l1: mem, l3: input.direct })
  try {
    const seed = Array.from({ length: SINGLE_KEYS }, (_, i) => {
      return { key: `actor:${i}`, value: actorState(i), version: 1, ttl: TTL }
    })
    for (const ns of ['reads', 'single_cas_direct', 'raw_cas_simple', 'raw_cas_prepared']) {
      await input.direct.namespace<State>(ns).setMany(seed)
    }
    const user = createPrismaStore({ prisma, timeout: 30_000 })
    const cases = [
      ...rawCases(pool, sql),
      ...storeCases(input.direct, 'connectPostgres', 'direct'),
      ...storeCases(user, 'user-built client', 'user').filter((c) => !c.name.includes('expected')),
      nsSetCase(l3only, 'L3 only', 'wt_l3'),
      nsSetCase(l1l3, 'L1 + L3', 'wt_l1_l3'),
    ]
    log('\n## Single-row statements, one at a time, next to raw pg sending the same statement\n')
    const single = await compare(cases, {
      opsPerRound: SINGLE_KEYS,
      rounds: input.rounds,
      warmup: 1,
      onRound: (r, total) => process.stderr.write(`\r  single rows: round ${r}/${total}`),
    })
    process.stderr.write('\n')
    log(table(single, 'raw pg set, prepared'))
    return { single, singleOverRaw: singleRatios(single, log) }
  } finally {
    await l3only.close()
    await l1l3.close()
    await mem.close()
    await prisma.$disconnect()
    await pool.end()
  }
}

/** Write-through (one row per statement) against batched writes, on PostgreSQL and PGlite. */
export async function runL3Suite(options: L3Options = {}): Promise<L3Report> {
  const log = options.log ?? console.log
  const url = options.url ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
  const rounds = options.rounds ?? 5
  const schema = `ac_bench_${process.pid}`
  const admin = await connectPostgresAdmin(url, 'L3')
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

    const singleRow = await runSingleRow(log, {
      url,
      schema,
      direct: createPrismaStore({ prisma: postgresClient, timeout: 30_000 }),
      rounds,
    })

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
      ...singleRow,
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
