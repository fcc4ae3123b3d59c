import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, migrate, type PrismaTier } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import { createTieredCache } from '@actor-cache/strategies'
import type pg from 'pg'
import { grid } from './harness.js'
import { int, median, progress, type State, TTL } from './tiered-common.js'
import { actorState } from './workload.js'

export interface WriteRow {
  name: string
  rowsPerSec: number
  ms: number
}

export const WT = 'write_through, new keys (one upsert per write)'
export const WB = 'write_behind, new keys (batch 500) + flush'
export const WT_UPDATE = 'write_through, updates of cached keys'
export const WB_UPDATE = 'write_behind, updates of cached keys + flush'
export const WB_64 = 'write_behind, new keys, 64 sets in flight + flush'
export const WB_HEADS = 'write_behind, keys this cache wrote before (version heads known) + flush'
export const RAW = 'raw PrismaStore.setMany, batch 500 (no cache)'

export interface WriteInput {
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

/** Write-behind against write-through into PostgreSQL through the Prisma store, next to raw setMany. */
export async function writeBehindVsThrough(
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
      (
        strategy: 'write_through' | 'write_behind',
        updates: boolean,
        how: { inFlight?: number; rewrite?: boolean } = {},
      ) =>
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
        const input = updates || how.rewrite ? updated : values
        try {
          if (updates) {
            await rawRun(namespace, count)
            const read = await ns.getMany(keys.slice(0, count))
            const missing = read.filter((v, i) => v?.id !== keys[i]).length
            if (missing > 0)
              throw new Error(`${namespace}: ${missing} preloaded rows not read back`)
          }
          if (how.rewrite) {
            // written once by this cache first: every key has a version head when timing starts
            for (let i = 0; i < count; i++) await ns.set(keys[i] as string, values[i] as State)
            await cache.flush()
          }
          const before = cache.stats().writeBehind?.written ?? 0
          const t0 = performance.now()
          const acked = new Map<string, number>()
          ackedVersions.set(namespace, acked)
          const inFlight = how.inFlight ?? 1
          for (let i = 0; i < count; i += inFlight) {
            const chunk = keys.slice(i, Math.min(count, i + inFlight))
            const results = await Promise.all(
              chunk.map((key, j) => ns.set(key, input[i + j] as State)),
            )
            for (let j = 0; j < chunk.length; j++) {
              acked.set(chunk[j] as string, (results[j] as { version: number }).version)
            }
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
      {
        name: WB_64,
        expect: { values, version: 'acked' },
        run: tieredRun('write_behind', false, { inFlight: 64 }),
      },
      {
        name: WB_HEADS,
        expect: { values: updated, version: 'acked' },
        run: tieredRun('write_behind', false, { rewrite: true }),
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
        `distinct keys per run, sequential awaited sets unless the case says otherwise, timed until every row is in PostgreSQL, ` +
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
        `write_behind / raw setMany at the flusher's batch size (target ≥ 0.8x): new keys ` +
        `${(rate(WB) / rate(RAW)).toFixed(2)}x, updates ${(rate(WB_UPDATE) / rate(RAW)).toFixed(2)}x, ` +
        `new keys 64 in flight ${(rate(WB_64) / rate(RAW)).toFixed(2)}x, ` +
        `keys with version heads ${(rate(WB_HEADS) / rate(RAW)).toFixed(2)}x. A key with no version ` +
        `head (never written, or not by this instance) reads its version from PostgreSQL on its first ` +
        `write; the writes of one tick share that read.`,
    )
    log('')
    for (const line of checks) log(`check: ${line}`)
    return rows
  } finally {
    await prisma?.$disconnect()
  }
}
