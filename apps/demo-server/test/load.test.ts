import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { LoadSetupError } from '../src/load/admin-client.js'
import { LatencyRecorder } from '../src/load/latency.js'
import { parseLoadOptions } from '../src/load/options.js'
import type { Output } from '../src/load/progress.js'
import { formatReport, type LoadReport } from '../src/load/report.js'
import { runLoad } from '../src/load/run-load.js'
import { parseMix } from '../src/load/workload.js'
import { createZipfSampler, prng } from '../src/load/zipf.js'
import { as, startTestServer, tempDir } from './helpers.js'

let server: DemoServer
let removeDir: () => Promise<void>

beforeAll(async () => {
  const dir = await tempDir()
  removeDir = dir.remove
  // No rate limit: the runs here send as fast as the machine goes, and a fast machine would reach
  // the shipped limit (5,000 calls a second per principal) and see 429s the tests do not expect.
  server = await startTestServer(dir.path, {
    adjust: (s) => ({ ...s, demo: { ...s.demo, rateLimit: undefined } }),
  })
})

afterAll(async () => {
  await server?.close()
  await removeDir?.()
})

const quiet = (): Output & { lines: string[] } => {
  const lines: string[] = []
  return { lines, line: (text) => lines.push(text) }
}

const options = (argv: string[]) => {
  const parsed = parseLoadOptions(['--url', server.url, ...argv], {})
  if (parsed === 'help') throw new Error('unexpected help')
  return parsed
}

describe('the caching switch and the counters (admin routes)', () => {
  it('are refused to players and game masters', async () => {
    for (const role of ['player', 'gm'] as const) {
      const res = await server.app.inject({
        method: 'GET',
        url: '/admin/load-stats',
        headers: as(role),
      })
      expect(res.statusCode).toBe(403)
      const put = await server.app.inject({
        method: 'PUT',
        url: '/admin/caching',
        headers: as(role),
        payload: { enabled: false },
      })
      expect(put.statusCode).toBe(403)
    }
  })

  it('with caching off, a read goes to the database although L1 holds the actor', async () => {
    const admin = as('admin')
    const read = () => server.app.inject({ method: 'GET', url: '/actors/3', headers: as('player') })
    // a write-through write leaves the actor in L1
    const write = await server.app.inject({
      method: 'PATCH',
      url: '/actors/3',
      headers: as('gm'),
      payload: { primaryCore: { hp: 321 } },
    })
    expect(write.statusCode).toBe(200)
    const reset = () =>
      server.app.inject({
        method: 'POST',
        url: '/admin/load-stats/reset',
        headers: admin,
        payload: {},
      })
    const stats = async () =>
      (await server.app.inject({ method: 'GET', url: '/admin/load-stats', headers: admin })).json()
    const switchTo = (enabled: boolean) =>
      server.app.inject({
        method: 'PUT',
        url: '/admin/caching',
        headers: admin,
        payload: { enabled },
      })
    await reset()
    expect((await read()).statusCode).toBe(200)
    expect(await stats()).toMatchObject({ caching: true, db: { reads: 0 }, l1: { hits: 1 } })
    expect((await switchTo(false)).json()).toEqual({ enabled: false })
    await reset()
    const res = await read()
    expect(res.json()).toMatchObject({ id: '3', version: 2, primaryCore: { hp: 321 } })
    expect(await stats()).toMatchObject({
      caching: false,
      db: { reads: 1 },
      l1: { hits: 0, misses: 0 },
    })
    expect((await switchTo(true)).json()).toEqual({ enabled: true })
  })
})

describe('runLoad', () => {
  let report: LoadReport
  const output = quiet()

  beforeAll(async () => {
    report = await runLoad(options(['--duration', '2s', '--concurrency', '4']), output)
  })

  it('measures both runs and puts the switch back', async () => {
    expect(report.actors).toBe(40)
    expect(report.hasL2).toBe(false)
    for (const run of [report.cached, report.uncached]) {
      expect(run.client.requests).toBeGreaterThan(0)
      expect(run.client.outcomes.errors).toBe(0)
      expect(run.client.latency.p99).toBeGreaterThanOrEqual(run.client.latency.p50)
      expect(run.server.memory.samples).toBeGreaterThan(0)
    }
    expect(report.cached.caching).toBe(true)
    expect(report.uncached.caching).toBe(false)
    const res = await server.app.inject({
      method: 'GET',
      url: '/admin/caching',
      headers: as('admin'),
    })
    expect(res.json()).toEqual({ enabled: true })
  })

  it('issues fewer database operations per request with caching on', () => {
    expect(report.cached.dbPerRequest).toBeLessThan(report.uncached.dbPerRequest)
    // reads alone: with caching off every read is one, so at least one per request
    expect(report.uncached.server.db.reads).toBeGreaterThanOrEqual(report.uncached.client.requests)
  })

  it('gives hit ratios in [0, 1], none from the uncached run, and no L2 ratio without Redis', () => {
    for (const r of [report.cached.l1HitRatio, report.cached.overallHitRatio]) {
      expect(r).toBeGreaterThanOrEqual(0)
      expect(r).toBeLessThanOrEqual(1)
    }
    expect(report.cached.l2HitRatio).toBeUndefined()
    expect(report.uncached.l1HitRatio).toBeUndefined()
  })

  it("checks every promise of the design document's two tables", () => {
    const metrics = report.checks.map((c) => `${c.table}: ${c.metric}`)
    expect(metrics).toEqual([
      'Expected Improvements: Query Performance: database queries',
      'Expected Improvements: Response Time: p50',
      'Expected Improvements: Response Time: p99',
      'Expected Improvements: Throughput',
      'Expected Improvements: Memory Usage',
      'Expected Improvements: Scalability',
      'Cache Hit Ratios: L1 Cache (MemCache)',
      'Cache Hit Ratios: L2 Cache (Redis)',
      'Cache Hit Ratios: Overall',
    ])
    const l2 = report.checks.find((c) => c.metric === 'L2 Cache (Redis)')
    expect(l2?.met).toBe('not applicable')
    expect(report.checks.find((c) => c.metric === 'Memory Usage')?.met).toBe('not comparable')
    for (const c of report.checks)
      expect(['yes', 'no', 'not applicable', 'not comparable']).toContain(c.met)
  })

  it('prints the tables, and says which promises were not met', () => {
    const text = formatReport(report).join('\n')
    expect(text).toMatch(/\| metric +\| design promise +\| measured +\| met\? +\|/)
    expect(text).toContain('Design document: Expected Improvements')
    expect(text).toContain('Design document: Cache Hit Ratios')
    const unmet = report.checks.filter((c) => c.met === 'no')
    for (const c of unmet) expect(text).toContain(`  ${c.metric}: promised ${c.promise}`)
    expect(output.lines.some((l) => l.includes('caching off') && l.includes('requests'))).toBe(true)
  })
})

describe('the response cache under load', () => {
  it('counts reads answered 304 and from the response cache; caching off bypasses it', async () => {
    // reads only, of one actor: every path is read again, unchanged, so players revalidate
    const argv = ['--duration', '1s', '--concurrency', '2', '--actors', '1']
    const mix = ['--mix', 'reads=1,updates=0,equipment=0,config=0']
    const run = await runLoad(options([...argv, ...mix]), quiet())
    const { cached, uncached } = run
    for (const r of [cached, uncached]) {
      const { outcomes, requests } = r.client
      expect(outcomes.ok + outcomes.notModified).toBe(requests)
      expect(outcomes.notModified).toBeGreaterThan(0)
    }
    const hits = cached.client.responseCache
    expect(hits.hits).toBeGreaterThan(0)
    expect(hits.hits + hits.misses).toBe(cached.client.requests)
    expect(hits.bypassed).toBe(0)
    expect(uncached.client.responseCache).toEqual({
      hits: 0,
      misses: 0,
      bypassed: uncached.client.requests,
    })
    const text = formatReport(run).join('\n')
    expect(text).toMatch(
      /\| reads from the response cache +\| \d[\d,]* of [\d,]+ \(\d+\.\d%\) +\| caching off/,
    )
    expect(text).toMatch(/\| reads answered 304 +\| \d/)
  })
})

describe('setup errors and options', () => {
  it('says to start the server when nothing answers', async () => {
    const run = runLoad(options(['--url', 'http://127.0.0.1:9', '--duration', '1s']), quiet())
    await expect(run).rejects.toThrow(LoadSetupError)
    await expect(run).rejects.toThrow(/pnpm demo/)
  })

  it('refuses bad flags, naming them', () => {
    expect(() => parseLoadOptions(['--duration', 'soon'], {})).toThrow(/--duration/)
    expect(() => parseLoadOptions(['--concurrency', '0'], {})).toThrow(/--concurrency/)
    expect(() => parseMix('reads=1,writes=2')).toThrow(/unknown kind "writes"/)
    expect(parseLoadOptions([], { LOAD_DURATION: '1m' })).toMatchObject({ durationMs: 60_000 })
  })

  it('draws Zipf ranks with rank 0 the most frequent, and exact percentiles', () => {
    const zipf = createZipfSampler(100, 1, prng(7))
    const counts = new Array<number>(100).fill(0)
    for (let i = 0; i < 20_000; i++) counts[zipf.next()]! += 1
    expect(counts[0]).toBeGreaterThan(counts[1] as number)
    expect(counts[1]).toBeGreaterThan(counts[50] as number)
    const latency = new LatencyRecorder()
    for (let i = 100; i >= 1; i--) latency.record(i)
    expect(latency.summary()).toMatchObject({ count: 100, p50: 50, p99: 99, max: 100 })
  })
})
