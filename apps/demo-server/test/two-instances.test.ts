/**
 * Two demo servers sharing a private redis-server and a PostgreSQL schema: how fast a write on one
 * shows on the other (p50/p99/max printed, never asserted), and Redis killed under a load of reads
 * and writes through both, then restarted on the same port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { actorKey, type PrimaryCore } from '../src/domain/types.js'
import { createHttpClient, type HttpClient } from '../src/load/http-client.js'
import { formatPropagation, measurePropagation } from '../src/two/propagation.js'
import { startTestServer, TOKENS, tempDir } from './helpers.js'
import {
  eventually,
  privateRedis,
  type RedisServer,
  type TestSchema,
  testSchema,
} from './servers.js'

/** A bound on a hang, never a timing: the figures are printed, not asserted. */
const HANG_MS = 10_000
const GM = TOKENS.gm

let redis: RedisServer | undefined
let schema: TestSchema | undefined
const servers: DemoServer[] = []
const clients: HttpClient[] = []
const dirs: (() => Promise<void>)[] = []

async function start(): Promise<DemoServer> {
  const dir = await tempDir()
  dirs.push(dir.remove)
  const server = await startTestServer(dir.path, {
    redisUrl: redis!.url,
    databaseUrl: schema!.url,
    seedActors: 60,
  })
  servers.push(server)
  // one client per instance; timeouts well past any wait the cache allows (a hang bound)
  clients.push(createHttpClient(server.url, 16, 20_000))
  return server
}

beforeAll(async () => {
  redis = await privateRedis()
  schema = await testSchema('demo_two')
  // one after the other: A seeds the shared schema, B finds it seeded
  await start()
  await start()
}, 300_000)

afterAll(async () => {
  for (const c of clients) c.close()
  await Promise.allSettled(servers.map((s) => s.close()))
  await redis?.kill()
  await schema?.drop()
  for (const remove of dirs) await remove()
})

interface Health {
  status: 'ok' | 'degraded' | 'down'
  ready: boolean
  components: Record<string, { status: string }>
}

async function health(client: HttpClient): Promise<Health | undefined> {
  const res = await client.send('GET', '/health/ready', undefined)
  return res.status === 0 ? undefined : (JSON.parse(res.body) as Health)
}

describe('two instances sharing Redis and PostgreSQL', () => {
  it('shares the store of record and L2: B sees what A seeded', async () => {
    const [a, b] = servers as [DemoServer, DemoServer]
    expect(a.stack.tiers.l2).toMatch(redis!.url)
    expect(b.stack.tiers.record).toMatch(schema!.name)
    const rows = await schema!.query<{ n: bigint }>(
      `SELECT count(*) AS n FROM "${schema!.name}".ac_cache_entries WHERE namespace = 'primary_core'`,
    )
    expect(Number(rows[0]?.n)).toBe(60)
  })

  it('shows a write on one instance on the other within a bounded window', async () => {
    const report = await measurePropagation({
      servers: [clients[0]!, clients[1]!],
      token: GM,
      actors: Array.from({ length: 10 }, (_, i) => String(i + 1)),
      rounds: 60,
      deadlineMs: HANG_MS,
    })
    console.log(formatPropagation(report).join('\n'))
    expect(report.failedWrites).toBe(0)
    expect(report.notSeen).toBe(0)
    expect(report.writes).toBe(60)
  })

  it('keeps answering cached reads while Redis is down, reports degraded, recovers, loses no acknowledged write', async () => {
    const [a, b] = clients as [HttpClient, HttpClient]
    const readActors = Array.from({ length: 20 }, (_, i) => String(i + 11)) // 11..30: only read
    const writers = 4
    const perWriter = 5
    const writeActors = (w: number) =>
      Array.from({ length: perWriter }, (_, i) => String(31 + w * perWriter + i)) // 31..50
    // both instances hold every read actor in L1 before the outage
    for (const id of readActors) {
      for (const c of [a, b]) expect((await c.send('GET', `/actors/${id}`, GM)).status).toBe(200)
    }

    type Phase = 'before' | 'down' | 'after'
    let phase: Phase = 'before'
    let running = true
    const reads: Record<Phase, Map<number, number>> = {
      before: new Map(),
      down: new Map(),
      after: new Map(),
    }
    /** Every write attempt per actor, in order: its hp and what came back. */
    type Outcome = 'ack' | 'refused' | 'unknown'
    const attempts = new Map<string, { hp: number; outcome: Outcome; phase: Phase }[]>()
    const acked = new Map<string, { hp: number; version: number }[]>()
    // gentler once Redis is back: the health check's error window keeps the load going ~30 s
    const pause = () => new Promise((r) => setTimeout(r, phase === 'after' ? 20 : 5))

    const reader = async (n: number) => {
      for (let i = n; running; i++) {
        const client = i % 2 === 0 ? a : b
        const at = phase
        const res = await client.send('GET', `/actors/${readActors[i % readActors.length]}`, GM)
        const counts = reads[at]
        counts.set(res.status, (counts.get(res.status) ?? 0) + 1)
        await pause()
      }
    }
    let hpSeq = 10_000
    let restartedAt = 0
    let lastRefusedAfter: number | undefined
    const writer = async (w: number) => {
      for (let i = 0; running; i++) {
        const id = writeActors(w)[i % perWriter] as string
        const hp = hpSeq++
        const at = phase
        const res = await (i % 2 === 0 ? a : b).send('PATCH', `/actors/${id}`, GM, {
          primaryCore: { hp },
        })
        const outcome =
          res.status === 200
            ? 'ack'
            : res.status >= 400 && res.status < 500
              ? 'refused' // a conflict or a bad request: the record did not take it
              : 'unknown' // no answer or a 5xx: maybe applied
        attempts.set(id, [...(attempts.get(id) ?? []), { hp, outcome, phase: at }])
        if (outcome === 'refused' && at === 'after') lastRefusedAfter = Date.now() - restartedAt
        if (outcome === 'ack') {
          const { version } = JSON.parse(res.body) as { version: number }
          acked.set(id, [...(acked.get(id) ?? []), { hp, version }])
        }
        await pause()
      }
    }
    const load = Promise.all([
      ...[0, 1, 2].map((n) => reader(n)),
      ...Array.from({ length: writers }, (_, w) => writer(w)),
    ])

    const degradedSeen = [false, false]
    const recoveredAfterMs: number[] = []
    try {
      await new Promise((r) => setTimeout(r, 1500))
      phase = 'down'
      await redis!.kill()
      const killedAt = Date.now()
      await eventually(
        async () => {
          for (const [i, c] of [a, b].entries()) {
            const h = await health(c)
            if (h?.status === 'degraded' && h.ready && h.components.l2?.status !== 'ok') {
              degradedSeen[i] = true
            }
          }
          return degradedSeen.every(Boolean)
        },
        30_000,
        'both instances to report degraded health with Redis down',
      )
      // the load runs against the outage for a few seconds
      const downFor = 4000 - (Date.now() - killedAt)
      if (downFor > 0) await new Promise((r) => setTimeout(r, downFor))
      await redis!.start()
      restartedAt = Date.now()
      phase = 'after'
      // a component with errors in the last 30 s (the health check's window) stays degraded
      await eventually(
        async () => {
          for (const [i, c] of [a, b].entries()) {
            if (recoveredAfterMs[i] === undefined && (await health(c))?.status === 'ok') {
              recoveredAfterMs[i] = Date.now() - restartedAt
            }
          }
          return recoveredAfterMs.filter((v) => v !== undefined).length === 2
        },
        90_000,
        'both instances to report ok health after Redis came back',
      )
    } finally {
      running = false
      await load
    }
    const summary = (m: Map<number, number>) =>
      [...m].map(([status, n]) => `${status === 0 ? 'no answer' : status}: ${n}`).join(', ')
    const all = [...attempts.values()].flat()
    const count = (o: Outcome, p?: Phase) =>
      all.filter((x) => x.outcome === o && (p === undefined || x.phase === p)).length
    const writesIn = (p: Phase) =>
      `${count('ack', p)} acknowledged, ${count('refused', p)} refused (409), ${count('unknown', p)} without an answer or 5xx`
    console.log(
      [
        `reads before the kill: ${summary(reads.before)}`,
        `reads while Redis was down: ${summary(reads.down)}`,
        `reads after the restart: ${summary(reads.after)}`,
        `writes before the kill: ${writesIn('before')}`,
        `writes while Redis was down: ${writesIn('down')}`,
        `writes after the restart: ${writesIn('after')}; the last refused ${
          lastRefusedAfter === undefined ? '-' : `${(lastRefusedAfter / 1000).toFixed(1)} s`
        } after the restart`,
        `health ok again ${recoveredAfterMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' / ')} after the restart (A / B)`,
      ].join('\n'),
    )
    expect([...reads.down.keys()]).toEqual([200])
    expect(reads.down.get(200)).toBeGreaterThan(0)
    for (const phaseReads of Object.values(reads)) expect([...phaseReads.keys()]).toEqual([200])
    expect(count('ack')).toBeGreaterThan(0)

    // every acknowledged write is in PostgreSQL's change log at its version, with its value
    const [serverA] = servers as [DemoServer]
    for (const [id, writes] of acked) {
      const history = await serverA.stack.tracker.history('primary_core', actorKey(id))
      const byVersion = new Map(history.map((r) => [r.version, r.newValue as PrimaryCore]))
      for (const w of writes)
        expect(byVersion.get(w.version)?.hp, `actor ${id} v${w.version}`).toBe(w.hp)
    }
    // each actor's row holds its last acknowledged write, or a later one that got no answer;
    // both instances answer that row
    for (const [id, tries] of attempts) {
      const lastAck = tries.map((t) => t.outcome).lastIndexOf('ack')
      const allowed = tries
        .filter(
          (t, i) =>
            (i === lastAck && t.outcome === 'ack') || (i > lastAck && t.outcome === 'unknown'),
        )
        .map((t) => t.hp)
      const row = await serverA.stack.record.store
        .namespace<PrimaryCore>('primary_core')
        .get(actorKey(id))
      if (lastAck >= 0) expect(allowed, `actor ${id}`).toContain(row?.value.hp)
      for (const c of [a, b]) {
        await eventually(
          async () => {
            const res = await c.send('GET', `/actors/${id}`, GM)
            const body = JSON.parse(res.body) as { version: number; primaryCore: PrimaryCore }
            return body.version === row?.version && body.primaryCore.hp === row.value.hp
          },
          HANG_MS,
          `actor ${id} as PostgreSQL holds it (v${row?.version}) through both instances`,
        )
      }
    }
  }, 300_000)
})
