/**
 * R4: the cross-instance stale window, with two processes. Instance A is a child
 * (test/fixtures/coherence-writer.mjs, on the BUILT packages) writing versions of one key; instance
 * B is this test process (src), with its own Redis clients, L1 and RedisBus, reading the key in a
 * tight loop (one event-loop turn per read so bus messages get in). Both tiers L1 memcache + L2
 * Redis + RedisBus; the namespace is write_through without a store of record (L2 orders versions).
 *
 * For each write i, window_i = (first time B's `get` returned i or newer) − (time A's `set(i)`
 * resolved), wall clock of the same machine: reported as p50/p99/max. It is mostly the time the
 * invalidation spends in Redis pub/sub and waiting for a CPU, so it is not asserted against a
 * clock (a loaded machine stretches it). Asserted, in the order of events instead: B's cache
 * handles every invalidation A publishes, in order; once it has handled the one of write i, every
 * read B begins returns i or newer (none is stale, however long delivery took); B's reads never
 * go backwards; B ends on the last write.
 *
 * Needs Redis at REDIS_URL (see helpers.ts) and built packages.
 */
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { InvalidationListener } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisBus, createRedisStore } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache } from '../src/index.js'
import { dropPrefix, eventually, FixtureProcess, redis, uid } from './helpers.js'

const here = dirname(fileURLToPath(import.meta.url))
const PKG = resolve(here, '..')
const WRITER = resolve(here, 'fixtures/coherence-writer.mjs')
const WRITES = 500
/** Bounds on waits: generous, only a hang should reach them. */
const BOOT_MS = 120_000
const EVENT_MS = 120_000

const children: FixtureProcess[] = []
const closers: (() => Promise<unknown>)[] = []
let client: AnyRedisClient
const prefix = `acc${uid()}`

beforeAll(async () => {
  client = await redis()
})
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL')
    await c.closed
  }
  for (const close of closers.splice(0).reverse()) await close()
}, BOOT_MS)
afterAll(async () => {
  if (client === undefined) return
  await dropPrefix(client, prefix)
  await client.close()
})

const now = (): number => performance.timeOrigin + performance.now()
const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i] as number
}

describe('R4: cross-instance stale window', () => {
  it(`A writes ${WRITES} versions, B (other process) sees each one; reads stay monotonic`, async () => {
    const nsName = 'coherence'
    const key = `actor:${uid()}`
    // instance B: separate clients for L2 and the bus (the bus duplicates its own subscriber)
    const bClient = await redis()
    closers.push(() => bClient.close())
    const bus = createRedisBus({ client: bClient, prefix })
    closers.push(() => bus.close())
    // what B's cache has handled: the sequence number of A's last invalidation, once the cache's
    // listener has returned (it drops the key from L1 before it returns)
    let handled = 0
    const outOfOrder: string[] = []
    const resets: string[] = []
    const senders = new Set<string>()
    const subscribe = bus.subscribe.bind(bus)
    bus.subscribe = (listener: InvalidationListener) =>
      subscribe({
        onInvalidate(message) {
          listener.onInvalidate(message)
          senders.add(message.senderId)
          if (message.seq !== handled + 1) outOfOrder.push(`${message.seq} after ${handled}`)
          handled = message.seq
        },
        onReset(reason) {
          resets.push(reason)
          listener.onReset(reason)
        },
      })
    const b: TieredCache = createTieredCache({
      l1: createMemCache(),
      l2: createRedisStore({ client: bClient, prefix }),
      bus,
    })
    closers.push(() => b.close())
    const ns = b.namespace<{ i: number }>(nsName, { ttl: 60_000 })
    await bus.start()

    const a = new FixtureProcess(
      WRITER,
      { AC_PREFIX: prefix, AC_NS: nsName, AC_KEY: key, AC_WRITES: String(WRITES) },
      PKG,
    )
    children.push(a)
    await a.waitFor((l) => l === 'ready', BOOT_MS, '"ready"')

    // B polls from before the first write until it has seen the last one
    let maxSeen = 0
    let reads = 0
    const firstSeen = new Map<number, number>()
    const regressions: string[] = []
    /** For each `handled` value a read began with, the oldest write such a read returned. */
    const oldestAfter = new Map<number, number>()
    let stop = false
    const poller = (async () => {
      while (!stop) {
        const begunAfter = handled
        const v = await ns.get(key)
        const t = now()
        reads++
        const i = v?.i ?? 0
        if (i < (oldestAfter.get(begunAfter) ?? Number.POSITIVE_INFINITY)) {
          oldestAfter.set(begunAfter, i)
        }
        if (i > maxSeen) {
          firstSeen.set(i, t)
          maxSeen = i
        } else if (i < maxSeen) {
          regressions.push(`read ${reads}: got ${i} after having seen ${maxSeen}`)
        }
        await turn()
      }
    })()
    const started = Date.now()
    a.send('go')
    try {
      await a.waitFor((l) => l === 'done', EVENT_MS, '"done"')
      const last = Number(/ (\d+)$/.exec(a.lines.findLast((l) => l.startsWith('w ')) ?? '')?.[1])
      // bounded polling on the conditions; the stale window itself is measured, not this wait
      await eventually(
        () => maxSeen === WRITES && handled >= last,
        EVENT_MS,
        `B to see write ${WRITES} and handle A's invalidation ${last}`,
      )
    } finally {
      stop = true
      await poller
    }
    const elapsed = Date.now() - started
    a.send('exit')
    expect(await a.closed, a.describe()).toEqual({ code: 0, signal: null })

    const acks = new Map<number, { version: number; t0: number; t1: number; seq: number }>()
    for (const line of a.lines) {
      const m = /^w (\d+) (\d+) (\S+) (\S+) (\d+)$/.exec(line)
      if (m) {
        const [i, version, t0, t1, seq] = m.slice(1).map(Number) as number[]
        acks.set(i as number, {
          version: version as number,
          t0: t0 as number,
          t1: t1 as number,
          seq: seq as number,
        })
      }
    }
    expect(acks.size).toBe(WRITES)
    // A's set(i) resolved after publishing its invalidation: once B handled A's message number
    // seq_i, write i is in L2 and B's L1 no longer holds anything older
    const seqs = Array.from({ length: WRITES }, (_, k) => acks.get(k + 1)?.seq as number)
    const stale: string[] = []
    for (const [begunAfter, oldest] of oldestAfter) {
      let due = 0 // the newest write whose invalidation B had handled
      for (let lo = 1, hi = WRITES; lo <= hi; ) {
        const mid = (lo + hi) >> 1
        if ((seqs[mid - 1] as number) <= begunAfter) {
          due = mid
          lo = mid + 1
        } else hi = mid - 1
      }
      if (oldest < due) {
        stale.push(
          `a read begun after B handled invalidation ${begunAfter} (write ${due}) got ${oldest}`,
        )
      }
    }
    // window_i: first time B returned i or newer, minus the time A's set(i) resolved
    const windows: number[] = []
    const fromStart: number[] = []
    let beforeAck = 0
    let skipped = 0
    let seenAt = Number.POSITIVE_INFINITY
    for (let i = WRITES; i >= 1; i--) {
      const t = firstSeen.get(i)
      if (t === undefined) skipped++
      else seenAt = Math.min(seenAt, t)
      const ack = acks.get(i) as { t0: number; t1: number }
      if (seenAt < ack.t1) beforeAck++
      windows.push(Math.max(0, seenAt - ack.t1))
      fromStart.push(seenAt - ack.t0)
    }
    windows.sort((x, y) => x - y)
    fromStart.sort((x, y) => x - y)
    const f = (ms: number): string => `${ms.toFixed(2)} ms`
    const setMs = [...acks.values()].map((x) => x.t1 - x.t0).sort((x, y) => x - y)
    console.log(
      `R4 stale window over ${WRITES} writes (A: child process, B: test process; ` +
        `L1 + L2 Redis + RedisBus), ${reads} reads by B in ${elapsed} ms:\n` +
        `  A's set resolved → B's get returns it: p50 ${f(percentile(windows, 50))}, ` +
        `p99 ${f(percentile(windows, 99))}, max ${f(percentile(windows, 100))} ` +
        `(${beforeAck} writes visible on B before A's set resolved, counted as 0)\n` +
        `  A's set called → B's get returns it: p50 ${f(percentile(fromStart, 50))}, ` +
        `p99 ${f(percentile(fromStart, 99))}, max ${f(percentile(fromStart, 100))}\n` +
        `  A's set duration: p50 ${f(percentile(setMs, 50))}, p99 ${f(percentile(setMs, 99))}, ` +
        `max ${f(percentile(setMs, 100))}\n` +
        `  versions B never returned (a newer one came first): ${skipped}; ` +
        `monotonic-read violations: ${regressions.length}; stale reads after an invalidation ` +
        `was handled: ${stale.length}; invalidations handled: ${handled}, bus resets: ${resets.length}`,
    )
    expect(regressions).toEqual([])
    expect(maxSeen).toBe(WRITES)
    // every invalidation A published reached B's cache, in order, none missing (a reset, if the
    // subscription ever had to be made again, is reported: B drops its L1 then, which is safe)
    expect(senders.size).toBe(1)
    expect(outOfOrder).toEqual([])
    expect(handled).toBe(seqs[WRITES - 1])
    expect(stale).toEqual([])
    const entry = await ns.getEntry(key)
    expect(entry?.value).toEqual({ i: WRITES })
    expect(entry?.version).toBe(acks.get(WRITES)?.version)
  }, 600_000)
})
