/**
 * R5 / R6 and the embedded mode, with real processes: a child (test/fixtures/wb-writer.mjs, on the
 * BUILT packages) writes through a write_behind namespace wired with L1 memcache + L2 Redis +
 * L3 Prisma store, sending `ack <key> <version> <n>` over IPC after every resolved `set` (see
 * fixtures/common.mjs). The test kills it (SIGKILL or SIGTERM), then checks PostgreSQL against the
 * acknowledgements it received.
 *
 * Needs Redis at REDIS_URL and PostgreSQL at DATABASE_URL (see helpers.ts) and built packages.
 */
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore, type PrismaTier } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore, createRedisWriteQueue } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache } from '../src/index.js'
import { dropPrefix, FixtureProcess, postgres, redis, type TestDb, uid } from './helpers.js'

const here = dirname(fileURLToPath(import.meta.url))
const PKG = resolve(here, '..')
const WRITER = resolve(here, 'fixtures/wb-writer.mjs')
/** The queue's claim timeout, in the writer and in the restarted consumer. */
const CLAIM_TIMEOUT = 300
/**
 * Bounds on waits for a child. Generous: only a hang should reach them (a child boots Prisma and
 * connects to Redis and PostgreSQL, which takes seconds on a loaded machine).
 */
const BOOT_MS = 120_000
const EVENT_MS = 60_000

// --- child processes ----------------------------------------------------------------------------

const children: FixtureProcess[] = []
function writer(env: Record<string, string>): FixtureProcess {
  const c = new FixtureProcess(WRITER, env, PKG)
  children.push(c)
  return c
}

/**
 * Runs `count` trials one after the other, each on its own child; the next trial's child boots
 * while the current trial runs (it only connects and waits for `go`), so a trial does not wait for
 * a child to start. A failing trial leaves the booted child to afterEach.
 */
async function trials(
  count: number,
  spawnFor: (t: number) => FixtureProcess,
  run: (child: FixtureProcess, t: number) => Promise<void>,
): Promise<void> {
  let next = spawnFor(0)
  for (let t = 0; t < count; t++) {
    const child = next
    if (t + 1 < count) next = spawnFor(t + 1)
    await run(child, t)
  }
}

/** Starts a booted writer and waits until it acknowledged `acks` writes. */
async function startWriting(child: FixtureProcess, acks = 1): Promise<void> {
  await child.waitFor((l) => l === 'ready', BOOT_MS, '"ready"')
  child.send('go')
  let seen = 0
  await child.waitFor((l) => l.startsWith('ack ') && ++seen >= acks, EVENT_MS, `${acks} acks`)
}

// --- acknowledgements ---------------------------------------------------------------------------

interface Ack {
  key: string
  version: number
  n: number
  /** Index of the line in the child's stdout. */
  at: number
}

function acksOf(lines: readonly string[], until = lines.length): Ack[] {
  const acks: Ack[] = []
  for (let i = 0; i < until; i++) {
    const m = /^ack (\S+) (\d+) (\d+)$/.exec(lines[i] as string)
    if (m) acks.push({ key: m[1] as string, version: Number(m[2]), n: Number(m[3]), at: i })
  }
  return acks
}

/** The acknowledged write with the highest version, per key. */
function lastPerKey(acks: readonly Ack[]): Map<string, Ack> {
  const last = new Map<string, Ack>()
  for (const a of acks) {
    const seen = last.get(a.key)
    if (seen === undefined || a.version > seen.version) last.set(a.key, a)
  }
  return last
}

interface Verdict {
  /** Keys whose last acknowledged write is missing from PostgreSQL (absent, older, other value). */
  lost: string[]
  /** Acknowledged writes (not only the last per key) whose version PostgreSQL does not reach. */
  lostAcks: number
  keys: number
}

/**
 * For every key, PostgreSQL must hold the last acknowledged write, or a newer one. Per key the
 * child writes sequentially, so a newer version carries a larger `n`.
 */
async function verify(l3: PrismaTier, ns: string, acks: readonly Ack[]): Promise<Verdict> {
  const last = lastPerKey(acks)
  const keys = [...last.keys()]
  const entries = await l3.namespace<{ n: number }>(ns).getMany(keys)
  const stored = new Map(keys.map((k, i) => [k, entries[i]]))
  const lost: string[] = []
  for (const [key, a] of last) {
    const e = stored.get(key)
    const ok =
      e !== undefined &&
      (e.version === a.version ? e.value.n === a.n : e.version > a.version && e.value.n > a.n)
    if (!ok) {
      lost.push(
        `${key}: acked v${a.version} {n:${a.n}}, stored ${e === undefined ? 'nothing' : `v${e.version} {n:${e.value.n}}`}`,
      )
    }
  }
  const lostAcks = acks.filter((a) => (stored.get(a.key)?.version ?? 0) < a.version).length
  return { lost, lostAcks, keys: keys.length }
}

// --- fixtures -----------------------------------------------------------------------------------

let db: TestDb
let client: AnyRedisClient
let l3: PrismaTier
const prefix = `acp${uid()}`

beforeAll(async () => {
  client = await redis()
  db = await postgres()
  l3 = createPrismaStore({ prisma: db.prisma, timeout: 60_000 }) // generous: not what is tested
}, 30_000)
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL')
    await c.closed
  }
}, BOOT_MS)
afterAll(async () => {
  if (client !== undefined) {
    await dropPrefix(client, prefix)
    await client.close()
  }
  await db?.drop()
}, 30_000)

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const between = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1))

/**
 * The restart: a new consumer of the same Redis stream with the same wiring persists what the
 * killed process left queued (its claimed-but-unacked entries come back after CLAIM_TIMEOUT).
 */
async function restartAndDrain(
  queueName: string,
  ns: string,
): Promise<{ flushed: number; ms: number; firstFlush: number; claimedAfterFirst: number }> {
  const started = Date.now()
  const queue = createRedisWriteQueue({
    client,
    prefix,
    name: queueName,
    claimTimeout: CLAIM_TIMEOUT,
  })
  const cache = createTieredCache({
    l1: createMemCache(),
    l2: createRedisStore({ client, prefix }),
    l3,
    queue,
    namespaces: { [ns]: { strategy: 'write_behind' } },
    writeBehind: { autoStart: false },
  })
  let flushed = 0
  let firstFlush = -1
  let claimedAfterFirst = 0
  try {
    // bounded polling: the dead consumer's claims come back after CLAIM_TIMEOUT; the rest of the
    // bound is slack for a loaded machine (only a queue that never drains reaches it)
    const deadline = Date.now() + CLAIM_TIMEOUT + 60_000
    for (;;) {
      const n = await cache.flush({ timeout: 30_000 })
      flushed += n
      const s = await queue.stats()
      if (firstFlush < 0) {
        firstFlush = n
        claimedAfterFirst = s.inFlight
      }
      if (s.ready + s.inFlight === 0) break
      if (Date.now() > deadline) {
        throw new Error(`queue ${queueName} still holds ${s.ready} ready, ${s.inFlight} claimed`)
      }
      await sleep(25)
    }
  } finally {
    await cache.close()
    await queue.close()
  }
  return { flushed, ms: Date.now() - started, firstFlush, claimedAfterFirst }
}

/**
 * Keys whose L2 copy is newer than the record after the drain: a write the killed process put in
 * L2 (the coordinating tier) but never enqueued, so it was never acknowledged nor persisted.
 */
async function aheadOfRecord(ns: string, keys = 20): Promise<number> {
  const names = Array.from({ length: keys }, (_, i) => `k${i}`)
  const [cached, stored] = await Promise.all([
    createRedisStore({ client, prefix }).namespace(ns).getMany(names),
    l3.namespace(ns).getMany(names),
  ])
  return names.filter((_, i) => (cached[i]?.version ?? 0) > (stored[i]?.version ?? 0)).length
}

// --- tests --------------------------------------------------------------------------------------

// The sleeps before a kill are the randomized kill point, not waits for something to happen: the
// assertions hold wherever the kill lands.

describe('R5: SIGKILL with pending write-behind writes, durable Redis Streams queue', () => {
  it('20 trials: every key holds its last acknowledged write after a restart drains the queue', async () => {
    const TRIALS = 20
    const started = Date.now()
    const rows: string[] = []
    let totalAcks = 0
    let totalDrained = 0
    let totalAhead = 0
    let trialsWithClaimed = 0
    const lost: string[] = []
    await trials(
      TRIALS,
      (t) =>
        writer({
          AC_SCHEMA: db.schema,
          AC_PREFIX: prefix,
          AC_NS: `crash${t}`,
          AC_QUEUE: `q-${prefix}-${t}`,
          AC_KEYS: '20',
          AC_WORKERS: '4',
          AC_CLAIM_TIMEOUT: String(CLAIM_TIMEOUT),
        }),
      async (child, t) => {
        const ns = `crash${t}`
        const queueName = `q-${prefix}-${t}`
        // two acks at least, so the total below exceeds one per trial whatever the timing
        await startWriting(child, 2)
        const delay = between(50, 400)
        await sleep(delay)
        child.kill('SIGKILL')
        const exit = await child.closed
        expect(exit.signal, `trial ${t}: ${child.describe()}`).toBe('SIGKILL')
        const acks = acksOf(child.lines)
        const drain = await restartAndDrain(queueName, ns)
        const v = await verify(l3, ns, acks)
        totalAcks += acks.length
        totalDrained += drain.flushed
        const ahead = await aheadOfRecord(ns)
        totalAhead += ahead
        if (drain.claimedAfterFirst > 0) trialsWithClaimed++
        lost.push(...v.lost.map((l) => `trial ${t}: ${l}`))
        rows.push(
          `  trial ${String(t).padStart(2)}: killed ${String(delay).padStart(3)} ms after 2nd ack, ` +
            `${String(acks.length).padStart(4)} acks on ${v.keys} keys, restart drained ` +
            `${String(drain.flushed).padStart(3)} queued writes in ${drain.ms} ms (first flush() ` +
            `${drain.firstFlush}, ${drain.claimedAfterFirst} still claimed by the dead consumer), ` +
            `L2 ahead of PG on ${ahead} keys, lost ${v.lost.length}`,
        )
      },
    )
    console.log(
      `R5 SIGKILL, durable queue (claimTimeout ${CLAIM_TIMEOUT} ms):\n${rows.join('\n')}\n` +
        `  total: ${TRIALS} trials, ${totalAcks} acknowledged writes, ${totalDrained} left ` +
        `queued at the kill and persisted by the restart, lost ${lost.length} ` +
        `(${((Date.now() - started) / 1000).toFixed(1)} s)\n` +
        `  report only: in ${trialsWithClaimed} trials the restart's first flush() returned while ` +
        `the dead consumer's claimed batch was not yet claimable (it waits claimTimeout); ` +
        `${totalAhead} keys had an unacknowledged, never-queued version in L2 newer than PG`,
    )
    expect(lost).toEqual([])
    expect(totalAcks).toBeGreaterThan(TRIALS)
  }, 900_000)
})

describe('R6: SIGTERM, graceful close with pending write-behind writes', () => {
  for (const durable of [true, false]) {
    const mode = durable ? 'durable Redis queue' : 'in-process queue'
    it(`${mode}: exit 0 and every acknowledged write persisted${durable ? ' or left queued' : ''}`, async () => {
      const rows: string[] = []
      const lost: string[] = []
      const nsOf = (t: number): string => `term${durable ? 'd' : 'm'}${t}`
      await trials(
        3,
        (t) =>
          writer({
            AC_SCHEMA: db.schema,
            AC_PREFIX: prefix,
            AC_NS: nsOf(t),
            AC_QUEUE: durable ? `q-${prefix}-${nsOf(t)}` : '',
            AC_CLAIM_TIMEOUT: String(CLAIM_TIMEOUT),
          }),
        async (child, t) => {
          const ns = nsOf(t)
          const queueName = `q-${prefix}-${ns}`
          await startWriting(child)
          await sleep(between(100, 300))
          const termAt = Date.now()
          child.kill('SIGTERM')
          const exit = await child.closed
          const exitMs = Date.now() - termAt
          expect(exit, `trial ${t}: ${child.describe()}`).toEqual({ code: 0, signal: null })
          expect(child.lines).toContain('closed')
          expect(child.lines.at(-1), 'the last message is "exit"').toBe('exit')
          const acks = acksOf(child.lines)
          const late = acks.filter((a) => a.at > child.lines.indexOf('closed')).length
          const before = await verify(l3, ns, acks)
          let leftQueued = 0
          let after = before
          if (durable && before.lost.length > 0) {
            // "left durable": what close() did not persist must still be in the stream
            leftQueued = (await restartAndDrain(queueName, ns)).flushed
            after = await verify(l3, ns, acks)
          }
          lost.push(...after.lost.map((l) => `trial ${t}: ${l}`))
          rows.push(
            `  trial ${t}: ${acks.length} acks (${late} resolved after close() returned), exit 0 ` +
              `${exitMs} ms after SIGTERM; not in PG at exit: ${before.lost.length} keys` +
              (durable ? `, left queued and drained later: ${leftQueued}` : '') +
              `; lost ${after.lost.length}`,
          )
        },
      )
      console.log(`R6 SIGTERM, ${mode}:\n${rows.join('\n')}`)
      expect(lost).toEqual([])
    }, 600_000)
  }
})

describe('embedded mode: in-process queue, SIGKILL', () => {
  it('writes flushed before the kill survive; acknowledged-but-unflushed ones may not (reported)', async () => {
    const TRIALS = 5
    const rows: string[] = []
    const lostFlushed: string[] = []
    let totalAcks = 0
    let totalGuaranteed = 0
    let totalLostAcks = 0
    let totalLostKeys = 0
    await trials(
      TRIALS,
      (t) =>
        writer({
          AC_SCHEMA: db.schema,
          AC_PREFIX: prefix,
          AC_NS: `embed${t}`,
          AC_QUEUE: '',
          AC_FLUSH_EVERY: '50',
        }),
      async (child, t) => {
        const ns = `embed${t}`
        await startWriting(child)
        await child.waitFor((l) => l === 'flushed', EVENT_MS, 'a first "flushed"')
        await sleep(between(50, 400))
        child.kill('SIGKILL')
        const exit = await child.closed
        expect(exit.signal, `trial ${t}: ${child.describe()}`).toBe('SIGKILL')
        const lines = child.lines
        // acks sent before a `flush-start` whose `flushed` was sent are persisted
        const lastFlushed = lines.lastIndexOf('flushed')
        const flushStart = lines.lastIndexOf('flush-start', lastFlushed)
        const all = acksOf(lines)
        const guaranteed = acksOf(lines, flushStart)
        const g = await verify(l3, ns, guaranteed)
        const everything = await verify(l3, ns, all)
        totalAcks += all.length
        totalGuaranteed += guaranteed.length
        totalLostAcks += everything.lostAcks
        totalLostKeys += everything.lost.length
        lostFlushed.push(...g.lost.map((l) => `trial ${t}: ${l}`))
        rows.push(
          `  trial ${t}: ${all.length} acks, ${guaranteed.length} before the last completed ` +
            `flush (lost ${g.lost.length}); after it ${all.length - guaranteed.length}, of which ` +
            `${everything.lostAcks} acknowledged writes lost (${everything.lost.length} keys ` +
            `behind their last ack)`,
        )
      },
    )
    console.log(
      `embedded mode (in-process queue, flush every 50 ms + background flusher), SIGKILL:\n` +
        `${rows.join('\n')}\n  total: ${totalAcks} acks, ${totalGuaranteed} covered by a ` +
        `completed flush (0 may be lost), ${totalLostAcks} acknowledged-but-unflushed writes ` +
        `lost on ${totalLostKeys} keys`,
    )
    expect(lostFlushed).toEqual([])
  }, 600_000)
})
