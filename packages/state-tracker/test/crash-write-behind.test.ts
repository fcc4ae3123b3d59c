/**
 * A process killed (SIGKILL at random points) while it writes through a tracked write_behind
 * namespace loses no acknowledged write from the change log: a child
 * (test/fixtures/tracked-wb-writer.mjs, on the BUILT packages) sets and deletes actors through a
 * TieredCache with L1 + L2 Redis + L3 PostgreSQL, a durable Redis Streams write queue and its
 * flusher running, reporting every write the cache acknowledged. After each kill, a new cache in
 * this process (another consumer of the same queue) takes over what the dead one left queued or
 * claimed and drains it; then every actor's chain verifies against its stored row, its versions
 * run 1..n, every acknowledged write is in the log at its version with its value, and no change
 * id is logged twice.
 *
 * `SEED=<n>` replays the kill points a run printed; `LONG_RUNS=<factor>` multiplies the trials.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import type { ChangeRecord } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaChangeLog, createPrismaStore } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore, createRedisWriteQueue } from '@actor-cache/redis'
import { createTieredCache } from '@actor-cache/strategies'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStateTracker } from '../src/index.js'
import { DATABASE_URL, openDatabase, sessionsGone, type TestDatabase } from './logs.js'

const here = dirname(fileURLToPath(import.meta.url))
const WRITER = resolve(here, 'fixtures/tracked-wb-writer.mjs')
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const LONG = Math.max(1, Number(process.env.LONG_RUNS ?? 1) || 1)
const TRIALS = 20 * LONG
const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31)) >>> 0
const NS = 'derived_stats'
/** The writer's actors: 3 writer loops × 2 actors each (see the fixture). */
const ACTORS = Array.from({ length: 6 }, (_, i) => `actor:${i}`)
/** The queue's claim timeout (ms), in the writer and in the consumer that takes over. */
const CLAIM_TIMEOUT = 300
/** Bounds on waits: only a hang reaches them (a child boots Prisma and connects first). */
const BOOT_MS = 120_000
const EVENT_MS = 60_000

/** One write the child saw acknowledged. */
type Ack =
  | { op: 'set'; key: string; version: number; value: unknown }
  | { op: 'delete'; key: string; version: number; existed: boolean }

interface Child {
  proc: ChildProcess
  acks: Ack[]
  errors: string[]
  /** The child sent `ready` (connected, waiting for `go`). */
  readonly ready: boolean
  /** Resolves once `test` holds; rejects when the child exits first or after `ms`. */
  waitFor(test: () => boolean, ms: number, what: string): Promise<void>
}

/** The application name (and queue consumer) of a trial's child: its database sessions carry it. */
const appOf = (t: number): string => `ac-crash-wb-${process.pid}-${SEED}-${t}`

/** A small seeded generator (the kill points and the children's choices come from `SEED`). */
function generator(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 2 ** 32
  }
}

function spawnWriter(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [WRITER], {
    cwd: resolve(here, '..'),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  proc.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000)
  })
  const acks: Ack[] = []
  const errors: string[] = []
  let ready = false
  const waiting = new Set<() => void>()
  const wake = (): void => {
    for (const w of [...waiting]) w()
  }
  proc.on('message', (m) => {
    const msg = JSON.parse(String(m)) as Ack | { op: 'ready' } | { op: 'error'; message: string }
    if (msg.op === 'ready') ready = true
    else if (msg.op === 'error') errors.push(msg.message)
    else acks.push(msg)
    wake()
  })
  proc.on('exit', wake)
  const child: Child = {
    proc,
    acks,
    errors,
    get ready() {
      return ready
    },
    waitFor(test, ms, what) {
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(check)
          reject(new Error(`no ${what} from the writer within ${ms} ms\n${stderr}`))
        }, ms)
        const check = (): void => {
          if (test()) {
            waiting.delete(check)
            clearTimeout(timer)
            resolvePromise()
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            waiting.delete(check)
            clearTimeout(timer)
            reject(
              new Error(
                `the writer exited before ${what}: ${errors.join(' | ')}\n${stderr.slice(-2000)}`,
              ),
            )
          }
        }
        waiting.add(check)
        check()
      })
    },
  }
  return child
}

async function connectRedis() {
  const client = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 5_000, reconnectStrategy: false },
  })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `this test needs Redis at ${REDIS_URL} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('SIGKILL mid-write with tracked write-behind (Redis Streams queue, postgres)', () => {
  let db: TestDatabase
  let schema: string
  let client: Awaited<ReturnType<typeof connectRedis>>
  const prefix = `acwb${process.pid}x${SEED}`
  const queueName = `tracked-${SEED}`
  const children: Child[] = []
  beforeAll(async () => {
    client = await connectRedis()
    db = await openDatabase('postgres')
    schema =
      (await db.prisma.$queryRawUnsafe<{ s: string }[]>('SELECT current_schema() AS s'))[0]?.s ?? ''
  })
  afterAll(async () => {
    for (const c of children) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) {
        c.proc.kill('SIGKILL')
        await once(c.proc, 'exit').catch(() => undefined)
      }
    }
    if (client !== undefined) {
      for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await client.unlink(keys)
      }
      await client.close()
    }
    await db?.close()
  }, 120_000)

  /**
   * The restart: a new cache over the same queue (another consumer) drains what the dead one
   * left, taking over its claimed-but-unacked entries once they are CLAIM_TIMEOUT idle.
   */
  async function restartAndDrain(
    t: number,
  ): Promise<{ queued: number; takenOver: number; drained: number; ms: number }> {
    const started = Date.now()
    const redis = client as unknown as AnyRedisClient
    const tracker = createStateTracker({ log: createPrismaChangeLog({ prisma: db.prisma }) })
    const queue = createRedisWriteQueue({
      client: redis,
      prefix,
      name: queueName,
      consumer: `restart-${t}`,
      claimTimeout: CLAIM_TIMEOUT,
    })
    const cache = createTieredCache({
      l1: createMemCache(),
      l2: createRedisStore({ client: redis, prefix }),
      l3: createPrismaStore({ prisma: db.prisma, timeout: 60_000 }),
      queue,
      namespaces: { [NS]: { strategy: 'write_behind', ttl: 60_000 } },
      writeBehind: { autoStart: false },
      tracking: tracker.writeTracking([NS]),
    })
    try {
      const before = await queue.stats()
      let drained = 0
      const deadline = Date.now() + CLAIM_TIMEOUT + 120_000
      for (;;) {
        drained += await cache.flush({ timeout: 60_000 })
        const s = await queue.stats()
        if (s.ready + s.inFlight === 0) break
        if (Date.now() > deadline) {
          throw new Error(`queue ${queueName} still holds ${s.ready} ready, ${s.inFlight} claimed`)
        }
        await sleep(25)
      }
      return {
        queued: before.ready + before.inFlight,
        takenOver: before.inFlight,
        drained,
        ms: Date.now() - started,
      }
    } finally {
      await cache.close()
      await queue.close()
    }
  }

  it(
    `logs every acknowledged write exactly once, in a whole chain, over ${TRIALS} kills (seed ${SEED})`,
    async () => {
      console.log(`crash-write-behind: seed ${SEED} (replay: SEED=${SEED}), ${TRIALS} trials`)
      const random = generator(SEED)
      const tracker = createStateTracker({ log: createPrismaChangeLog({ prisma: db.prisma }) })
      const rows = createPrismaStore({ prisma: db.prisma }).namespace(NS)
      /** Every acknowledged write of every trial so far, per actor. */
      const acked = new Map<string, (Ack & { trial: number })[]>()
      const report: string[] = []
      const totals = { acks: 0, queued: 0, takenOver: 0, drained: 0 }
      const started = Date.now()
      const spawnFor = (t: number): Child => {
        const c = spawnWriter({
          DATABASE_URL,
          REDIS_URL,
          SCHEMA: schema,
          APP: appOf(t),
          PREFIX: prefix,
          QUEUE: queueName,
          NS,
          SEED: String((SEED + t * 7919) >>> 0),
          CLAIM_TIMEOUT: String(CLAIM_TIMEOUT),
        })
        children.push(c)
        return c
      }
      let next = spawnFor(0)
      for (let t = 0; t < TRIALS; t++) {
        const child = next
        // the next child boots (connects, then waits for `go`) while this trial runs
        if (t + 1 < TRIALS) next = spawnFor(t + 1)
        await child.waitFor(() => child.ready, BOOT_MS, '"ready"')
        child.proc.send('go')
        // the kill point: after 1 to 60 acknowledged writes, then 0 to 40 ms more
        const acks = 1 + Math.floor(random() * 60)
        const extra = Math.floor(random() * 41)
        await child.waitFor(() => child.acks.length >= acks, EVENT_MS, `${acks} acks`)
        if (extra > 0) await sleep(extra)
        child.proc.kill('SIGKILL')
        await once(child.proc, 'exit').catch(() => undefined)
        expect(child.errors, `trial ${t} (seed ${SEED}): the writer failed`).toEqual([])
        // A statement (or COMMIT) the child sent may still run on the server after it died: wait
        // until its sessions are gone, so nothing commits behind the drain and the reads below.
        await sessionsGone(db, appOf(t))
        const drain = await restartAndDrain(t)
        for (const a of child.acks) {
          const list = acked.get(a.key) ?? []
          list.push({ ...a, trial: t })
          acked.set(a.key, list)
        }
        totals.acks += child.acks.length
        totals.queued += drain.queued
        totals.takenOver += drain.takenOver
        totals.drained += drain.drained
        const problems: string[] = []
        const ids = new Map<string, string>()
        for (const actor of ACTORS) {
          const history = await tracker.history(NS, actor)
          const stored = await rows.get(actor)
          const state =
            stored === undefined
              ? { exists: false as const }
              : { exists: true as const, value: stored.value, version: stored.version }
          const verified = await tracker.verify(NS, actor, { stored: state })
          if (!verified.ok) {
            problems.push(
              `${actor}: chain ${verified.reason} at version ${verified.version}: ${verified.detail}`,
            )
          }
          const versions = history.map((r) => r.version)
          if (
            !isDeepStrictEqual(
              versions,
              Array.from(versions, (_, i) => i + 1),
            )
          ) {
            problems.push(
              `${actor}: log versions ${versions.join(',')} are not 1..${versions.length}`,
            )
          }
          const last = history.at(-1)
          const lastExists = last !== undefined && last.changeType !== 'delete'
          if (
            lastExists !== (stored !== undefined) ||
            (stored !== undefined &&
              (stored.version !== last?.version ||
                !isDeepStrictEqual(stored.value, last?.newValue)))
          ) {
            problems.push(
              `${actor}: stored ${stored === undefined ? 'nothing' : `v${stored.version} ${JSON.stringify(stored.value)}`}, log ends at ${last === undefined ? 'nothing' : `v${last.version} ${last.changeType} ${JSON.stringify(last.newValue)}`}`,
            )
          }
          for (const r of history) {
            const seen = ids.get(r.id)
            if (seen !== undefined)
              problems.push(`change id ${r.id} logged twice: ${seen}, ${actor} v${r.version}`)
            ids.set(r.id, `${actor} v${r.version}`)
          }
          const byVersion = new Map<number, ChangeRecord>(history.map((r) => [r.version, r]))
          for (const a of acked.get(actor) ?? []) {
            const r = byVersion.get(a.version)
            const ok =
              r !== undefined &&
              (a.op === 'set'
                ? r.changeType !== 'delete' && isDeepStrictEqual(r.newValue, a.value)
                : r.changeType === 'delete')
            if (!ok) {
              const logged = history.find(
                (h) => a.op === 'set' && isDeepStrictEqual(h.newValue, a.value),
              )
              problems.push(
                `${actor}: ${a.op} acknowledged in trial ${a.trial} at v${a.version}` +
                  (a.op === 'set' ? ` ${JSON.stringify(a.value)}` : ` (existed: ${a.existed})`) +
                  `; the log has ${r === undefined ? 'no such version' : `v${r.version} ${r.changeType} ${JSON.stringify(r.newValue)}`}` +
                  (a.op === 'set'
                    ? logged === undefined
                      ? '; the value is nowhere in the log'
                      : `; the value is logged at v${logged.version}`
                    : ''),
              )
            }
          }
        }
        report.push(
          `  trial ${String(t).padStart(2)}: killed after ${String(acks).padStart(2)} acks + ${String(extra).padStart(2)} ms ` +
            `(${child.acks.length} acknowledged), restart found ${drain.queued} queued ` +
            `(${drain.takenOver} claimed by the dead consumer), drained ${drain.drained} in ${drain.ms} ms, ` +
            `problems ${problems.length}`,
        )
        if (problems.length > 0) {
          console.log(report.join('\n'))
        }
        expect(problems, `trial ${t} (seed ${SEED}, replay: SEED=${SEED})`).toEqual([])
      }
      console.log(
        `${report.join('\n')}\n  total: ${TRIALS} kills, ${totals.acks} acknowledged writes ` +
          `(every one checked after each later trial too), ${totals.queued} left queued at the ` +
          `kills, ${totals.takenOver} taken over from a dead consumer, ${totals.drained} drained; ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s (seed ${SEED})`,
      )
      expect(totals.acks).toBeGreaterThanOrEqual(TRIALS)
    },
    1_200_000 * LONG,
  )
})
