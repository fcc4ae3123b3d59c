import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { ChangeTail } from '../src/dashboard/change-tail.js'
import { percentiles, quantileMs } from '../src/dashboard/readings.js'
import { as, startTestServer, TOKENS, tempDir } from './helpers.js'

let server: DemoServer
let removeDir: () => Promise<void>

beforeAll(async () => {
  const dir = await tempDir()
  removeDir = dir.remove
  server = await startTestServer(dir.path, { seedActors: 30 })
})

afterAll(async () => {
  await server?.close()
  await removeDir?.()
})

const get = (url: string, headers: Record<string, string> = {}) =>
  server.app.inject({ method: 'GET', url, headers })

/** Reads an event stream until its first `snapshot` event; returns it and the open reader. */
async function firstSnapshot(url: string) {
  const response = await fetch(url)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  for (let i = 0; i < 100; i++) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`the stream ended before a snapshot: ${text}`)
    text += decoder.decode(value, { stream: true })
    const match = /event: snapshot\ndata: (.*)\n\n/.exec(text)
    if (match !== null) return { snapshot: JSON.parse(match[1]!), reader }
  }
  throw new Error('no snapshot in 100 chunks')
}

describe('dashboard page and assets', () => {
  it('serves the page, its modules and uPlot without a token, with a content security policy', async () => {
    const page = await get('/dashboard')
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.body).toContain('/dashboard/app.js')
    for (const asset of [
      '/dashboard/app.js',
      '/dashboard/charts.js',
      '/dashboard/vendor/uPlot.esm.js',
    ]) {
      const res = await get(asset)
      expect(res.statusCode, asset).toBe(200)
      expect(res.headers['content-type']).toMatch(/^text\/javascript/)
    }
    expect((await get('/dashboard/vendor/uPlot.esm.js')).body).toContain(
      'export { uPlot as default }',
    )
    expect((await get('/dashboard/../package.json')).statusCode).toBe(404)
  })
})

describe('GET /dashboard/events', () => {
  it('needs a token that may read the audit trail', async () => {
    expect((await get('/dashboard/events')).statusCode).toBe(401)
    expect((await get('/dashboard/events?token=nope')).statusCode).toBe(401)
    const player = await get(`/dashboard/events?token=${TOKENS.player}`)
    expect(player.statusCode).toBe(403)
    expect(player.json().code).toBe('E_FORBIDDEN')
  })

  it('streams snapshots: hit ratios, latency, evictions, queue, circuit, alerts, latest changes', async () => {
    await server.app.inject({
      method: 'PATCH',
      url: '/actors/3',
      headers: as('gm'),
      payload: { primaryCore: { hp: 321 } },
    })
    for (let i = 0; i < 3; i++) await get('/actors/3/derived', as('player'))
    const { snapshot, reader } = await firstSnapshot(
      `${server.url}/dashboard/events?token=${TOKENS.admin}`,
    )
    await reader.cancel()
    expect(snapshot.tiers.l2).toMatch(/^none/)
    expect(snapshot.circuit).toEqual({ l2: 'none' })
    expect(snapshot.hitRatio.total.reads).toBeGreaterThanOrEqual(3)
    expect(snapshot.hitRatio.total.l1).toBeGreaterThan(0)
    expect(snapshot.latency.total.count).toBeGreaterThan(0)
    expect(snapshot.latency.total.p50).toBeGreaterThan(0)
    expect(snapshot.latency.total.p99).toBeGreaterThanOrEqual(snapshot.latency.total.p50)
    expect(snapshot.writeBehind).toMatchObject({ inFlight: expect.any(Number), capacity: 100_000 })
    expect(snapshot.evictions).toMatchObject({ total: 0 })
    expect(snapshot.alerts).toEqual([])
    // the newest 20 of 61 records (30 actors × 2 creates, and the update), oldest first
    expect(snapshot.changes).toHaveLength(20)
    expect(snapshot.changes.at(-1)).toMatchObject({
      entityId: 'actor:3',
      version: 2,
      userId: 'gm-1',
      newValue: expect.objectContaining({ hp: 321 }),
    })
  })
})

describe('GET /actors/:id/inspect', () => {
  it("shows each tier's copy with version and TTL, for game masters and admins", async () => {
    await get('/actors/4/derived', as('gm'))
    const res = await get('/actors/4/inspect', as('gm'))
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ id: '4', key: 'actor:4' })
    const core = body.namespaces.primary_core
    expect(Object.keys(core.tiers)).toEqual(['l1', 'record']) // no Redis: no L2
    expect(core.tiers.record).toMatchObject({ state: 'present', version: 1, ttlMs: null })
    expect(core.cache).toMatchObject({ state: 'present', version: 1 })
    expect(body.namespaces.derived_stats.tiers.l1).toMatchObject({ state: 'present' })
    expect(body.namespaces.derived_stats.tiers.l1.ttlMs).toBeGreaterThan(500_000) // 600 s
    const missing = (await get('/actors/9999/inspect', as('admin'))).json()
    expect(missing.namespaces.primary_core.tiers.record).toEqual({ state: 'absent' })
    expect((await get('/actors/4/inspect', as('player'))).statusCode).toBe(403)
    expect((await get('/actors/4/inspect')).statusCode).toBe(401)
  })
})

describe('closing with a stream open', () => {
  it('ends the stream and closes without waiting for the page', async () => {
    const dir = await tempDir()
    const own = await startTestServer(dir.path, { seedActors: 2 })
    try {
      const { reader } = await firstSnapshot(`${own.url}/dashboard/events?token=${TOKENS.gm}`)
      let timer: NodeJS.Timeout | undefined
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('close() waited on the open stream')), 20_000)
      })
      await Promise.race([own.close(), late]).finally(() => clearTimeout(timer))
      for (let i = 0; i < 100; i++) if ((await reader.read()).done) return
      throw new Error('the stream did not end')
    } finally {
      await own.close()
      await dir.remove()
    }
  })
})

describe('dashboard readings', () => {
  it('interpolates quantiles within cumulative buckets, as histogram_quantile does', () => {
    const buckets = new Map([
      [0.001, 50],
      [0.01, 90],
      [0.1, 100],
      [Infinity, 100],
    ])
    expect(quantileMs(buckets, 0.5)).toBeCloseTo(1)
    expect(quantileMs(buckets, 0.7)).toBeCloseTo(5.5)
    expect(quantileMs(buckets, 0.99)).toBeCloseTo(91)
    expect(quantileMs(new Map([[Infinity, 0]]), 0.5)).toBeNull()
    expect(
      quantileMs(
        new Map([
          [0.5, 0],
          [Infinity, 4],
        ]),
        0.9,
      ),
    ).toBe(500)
    expect(percentiles(buckets).count).toBe(100)
  })

  it('tails the log with one small page however long it is', async () => {
    const log = Array.from({ length: 2500 }, (_, i) => ({ id: String(i) }))
    const queries: { cursor?: string; limit?: number }[] = []
    const source = {
      async query(q: { cursor?: string; limit?: number }) {
        queries.push(q)
        const start = q.cursor === undefined ? 0 : Number(q.cursor)
        const limit = q.limit ?? 100
        const records = log.slice(start, start + limit)
        return start + limit < log.length
          ? { records, nextCursor: String(start + limit) }
          : { records }
      },
    }
    const tail = new ChangeTail(source as never, 5)
    expect((await tail.latest()).map((r) => r.id)).toEqual(['2495', '2496', '2497', '2498', '2499'])
    log.push({ id: '2500' })
    queries.length = 0
    expect((await tail.latest()).map((r) => r.id)).toEqual(['2496', '2497', '2498', '2499', '2500'])
    expect(queries[0]).toEqual({ cursor: '2495', limit: 1000 })
  })
})
