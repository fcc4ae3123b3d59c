/**
 * R4: the cross-instance stale window, with two processes. Instance A is a child
 * (test/fixtures/coherence-writer.mjs, on the BUILT packages) writing versions of one key; instance
 * B is this test process (src), with its own Redis clients, L1 and RedisBus, reading the key in a
 * tight loop (one event-loop turn per read so bus messages get in). Both tiers L1 memcache + L2
 * Redis + RedisBus; the namespace is write_through without a store of record (L2 orders versions).
 *
 * For each write i, window_i = (first time B's `get` returned i or newer) − (time A's `set(i)`
 * resolved), wall clock of the same machine. Reported as p50/p99/max; asserted: B's reads never go
 * backwards, B ends on the last write, and the max window is under a generous 1 s sanity bound.
 *
 * Needs Redis at REDIS_URL (see helpers.ts) and built packages.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisBus, createRedisStore } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache } from '../src/index.js'
import { dropPrefix, eventually, REDIS_URL, redis, uid } from './helpers.js'

const here = dirname(fileURLToPath(import.meta.url))
const PKG = resolve(here, '..')
const WRITER = resolve(here, 'fixtures/coherence-writer.mjs')
const WRITES = 500

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** A child running a fixture, its stdout kept as complete lines. */
class Child {
  readonly proc: ChildProcess
  readonly lines: string[] = []
  stderr = ''
  exit: Exit | undefined
  readonly closed: Promise<Exit>
  #partial = ''

  constructor(script: string, env: Record<string, string>) {
    this.proc = spawn(process.execPath, [script], {
      cwd: PKG,
      env: { ...process.env, REDIS_URL, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.proc.stdout?.setEncoding('utf8')
    this.proc.stdout?.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n')
      this.#partial = parts.pop() ?? ''
      for (const p of parts) this.lines.push(p)
    })
    this.proc.stderr?.setEncoding('utf8')
    this.proc.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk
    })
    this.proc.stdin?.on('error', () => {})
    this.closed = new Promise((res) => {
      this.proc.on('close', (code, signal) => {
        this.exit = { code, signal }
        res(this.exit)
      })
    })
  }

  /** Waits for a line matching `test`; fails with the child's stderr if it exits first. */
  async waitFor(test: (line: string) => boolean, ms: number, what: string): Promise<void> {
    await eventually(
      () => this.lines.some(test) || this.exit !== undefined,
      ms,
      `${what} from the child`,
    )
    if (!this.lines.some(test)) {
      throw new Error(
        `child exited (${JSON.stringify(this.exit)}) before ${what}; stderr:\n${this.stderr}`,
      )
    }
  }

  send(line: string): void {
    this.proc.stdin?.write(`${line}\n`)
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exit === undefined) this.proc.kill(signal)
  }
}

const children: Child[] = []
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
})
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
    const b: TieredCache = createTieredCache({
      l1: createMemCache(),
      l2: createRedisStore({ client: bClient, prefix }),
      bus,
    })
    closers.push(() => b.close())
    const ns = b.namespace<{ i: number }>(nsName, { ttl: 60_000 })
    await bus.start()

    const a = new Child(WRITER, {
      AC_PREFIX: prefix,
      AC_NS: nsName,
      AC_KEY: key,
      AC_WRITES: String(WRITES),
    })
    children.push(a)
    await a.waitFor((l) => l === 'ready', 15_000, '"ready"')

    // B polls from before the first write until it has seen the last one
    let maxSeen = 0
    let reads = 0
    const firstSeen = new Map<number, number>()
    const regressions: string[] = []
    let stop = false
    const poller = (async () => {
      while (!stop) {
        const v = await ns.get(key)
        const t = now()
        reads++
        const i = v?.i ?? 0
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
      await a.waitFor((l) => l === 'done', 30_000, '"done"')
      await eventually(() => maxSeen === WRITES, 2_000, `B to see write ${WRITES}`)
    } finally {
      stop = true
      await poller
    }
    const elapsed = Date.now() - started
    a.send('exit')
    expect(await a.closed, `stderr:\n${a.stderr}`).toEqual({ code: 0, signal: null })

    const acks = new Map<number, { version: number; t0: number; t1: number }>()
    for (const line of a.lines) {
      const m = /^w (\d+) (\d+) (\S+) (\S+)$/.exec(line)
      if (m) acks.set(Number(m[1]), { version: Number(m[2]), t0: Number(m[3]), t1: Number(m[4]) })
    }
    expect(acks.size).toBe(WRITES)
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
        `monotonic-read violations: ${regressions.length}`,
    )
    expect(regressions).toEqual([])
    expect(maxSeen).toBe(WRITES)
    expect(percentile(windows, 100)).toBeLessThan(1_000)
    const entry = await ns.getEntry(key)
    expect(entry?.value).toEqual({ i: WRITES })
    expect(entry?.version).toBe(acks.get(WRITES)?.version)
  }, 60_000)
})
