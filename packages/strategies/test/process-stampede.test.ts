/**
 * R10: a cold key stampeded by 10,000 concurrent getOrSet, in one process (in-process, src) and in
 * 3 processes at once (test/fixtures/stampede.mjs on the BUILT packages, sharing Redis as L2).
 * With createRedisLockProvider as `lock` the loader runs once overall; without it, at most once
 * per process. The children give the lock holder a generous lockWait (see the fixture), so "once
 * overall" does not depend on the holder finishing within the 5 s default on a loaded machine.
 *
 * Needs Redis at REDIS_URL (see helpers.ts) and built packages.
 */
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache } from '../src/index.js'
import { dropPrefix, FixtureProcess, redis, uid } from './helpers.js'

const here = dirname(fileURLToPath(import.meta.url))
const PKG = resolve(here, '..')
const STAMPEDE = resolve(here, 'fixtures/stampede.mjs')
const N = 10_000
const LOAD_MS = 100
/** Bounds on waits: generous, only a hang should reach them. */
const BOOT_MS = 120_000
const EVENT_MS = 120_000

/** What a stampeding child sends when its 10,000 calls are done. */
interface Report {
  pid: number
  calls: number
  ms: number
  loads: number
  /** JSON of each distinct result → how many calls returned it */
  values: Record<string, number>
  errors: Record<string, number>
}

const children: FixtureProcess[] = []
let client: AnyRedisClient
const prefix = `acs${uid()}`
const caches: TieredCache[] = []

beforeAll(async () => {
  client = await redis()
})
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close()
  for (const c of children.splice(0)) {
    c.kill('SIGKILL')
    await c.closed
  }
}, BOOT_MS)
afterAll(async () => {
  if (client === undefined) return
  await dropPrefix(client, prefix)
  await client.close()
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** 3 processes behind a barrier, each firing N getOrSet of the same cold key. */
async function stampede(
  round: string,
  lock: boolean,
): Promise<{ reports: Report[]; loads: number }> {
  const counter = `${prefix}:loads:${round}`
  const env = {
    AC_PREFIX: prefix,
    AC_NS: 'stampede',
    AC_KEY: `cold:${round}`,
    AC_COUNTER: counter,
    AC_LOCK: lock ? '1' : '0',
    AC_N: String(N),
    AC_SLEEP: String(LOAD_MS),
  }
  const procs = [0, 1, 2].map(() => {
    const c = new FixtureProcess(STAMPEDE, env, PKG)
    children.push(c)
    return c
  })
  for (const c of procs) await c.waitFor((l) => l === 'ready', BOOT_MS, '"ready"')
  for (const c of procs) c.send('go') // the barrier opens for all three at once
  const reports: Report[] = []
  for (const c of procs) {
    const line = await c.waitFor((l) => l.startsWith('{'), EVENT_MS, 'its report')
    reports.push(JSON.parse(line) as Report)
    const exit = await c.closed
    expect(exit, c.describe()).toEqual({ code: 0, signal: null })
  }
  const c = client as unknown as { get(key: string): Promise<string | null> }
  const loads = Number((await c.get(counter)) ?? 0)
  return { reports, loads }
}

function describeRound(r: { reports: Report[]; loads: number }): string {
  return r.reports
    .map(
      (p) =>
        `pid ${p.pid}: ${p.calls} calls in ${p.ms} ms, ${p.loads} loader call(s), ` +
        `${Object.keys(p.values).length} distinct value(s), ${Object.keys(p.errors).length} error kind(s)`,
    )
    .join('; ')
}

describe('R10: stampede on a cold key', () => {
  it('one process: 10,000 concurrent getOrSet call the loader once (L1 + L2 Redis)', async () => {
    const c = createTieredCache({ l1: createMemCache(), l2: createRedisStore({ client, prefix }) })
    caches.push(c)
    const ns = c.namespace<{ nonce: string }>('single', { ttl: 60_000 })
    let calls = 0
    const loader = async (): Promise<{ nonce: string }> => {
      calls++
      await sleep(LOAD_MS)
      return { nonce: uid() }
    }
    const started = performance.now()
    const values = await Promise.all(Array.from({ length: N }, () => ns.getOrSet('cold', loader)))
    const ms = Math.round(performance.now() - started)
    const distinct = new Set(values.map((v) => JSON.stringify(v)))
    console.log(
      `R10 in-process: ${N} concurrent getOrSet → ${calls} loader call(s), ` +
        `${distinct.size} distinct value(s), ${ms} ms`,
    )
    expect(calls).toBe(1)
    expect(distinct.size).toBe(1)
    expect(values).toHaveLength(N)
  }, 120_000)

  it('3 processes with the Redis lock: 1 loader call overall, all 30,000 results equal', async () => {
    const rows: string[] = []
    const failures: string[] = []
    for (let round = 0; round < 3; round++) {
      const r = await stampede(`lock${round}`, true)
      const distinct = new Set(r.reports.flatMap((p) => Object.keys(p.values)))
      const ok = r.reports.reduce(
        (n, p) => n + Object.values(p.values).reduce((a, b) => a + b, 0),
        0,
      )
      const errors = r.reports.flatMap((p) => Object.entries(p.errors))
      rows.push(
        `  round ${round}: ${r.loads} loader call(s) overall, ${ok} results, ${distinct.size} ` +
          `distinct value(s), errors ${JSON.stringify(errors)} — ${describeRound(r)}`,
      )
      if (r.loads !== 1 || distinct.size !== 1 || ok !== 3 * N || errors.length > 0) {
        failures.push(`round ${round}: ${r.loads} loads, ${distinct.size} values, ${ok} ok`)
      }
    }
    console.log(`R10 3 processes × ${N} getOrSet, Redis lock:\n${rows.join('\n')}`)
    expect(failures).toEqual([])
  }, 600_000)

  it('3 processes without a lock: at most 1 loader call per process (reported)', async () => {
    const rows: string[] = []
    const failures: string[] = []
    for (let round = 0; round < 2; round++) {
      const r = await stampede(`nolock${round}`, false)
      const distinct = new Set(r.reports.flatMap((p) => Object.keys(p.values)))
      const ok = r.reports.reduce(
        (n, p) => n + Object.values(p.values).reduce((a, b) => a + b, 0),
        0,
      )
      rows.push(
        `  round ${round}: ${r.loads} loader call(s) overall, ${ok} results, ${distinct.size} ` +
          `distinct value(s) — ${describeRound(r)}`,
      )
      for (const p of r.reports) {
        if (p.loads > 1 || Object.keys(p.values).length !== 1 || Object.keys(p.errors).length > 0)
          failures.push(
            `round ${round} pid ${p.pid}: ${p.loads} loads, values ${JSON.stringify(p.values)}`,
          )
      }
      if (r.loads > 3) failures.push(`round ${round}: ${r.loads} loads overall`)
    }
    console.log(`R10 3 processes × ${N} getOrSet, no lock:\n${rows.join('\n')}`)
    expect(failures).toEqual([])
  }, 600_000)
})
