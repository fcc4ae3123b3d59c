/**
 * Change streams (`@actor-cache/state-tracker`): end-to-end latency from a write to a subscriber,
 * beside raw Redis Streams (XADD on one connection, a blocked XREAD on another, a payload the size
 * of a change record's JSON). Writes are `trackChange` calls into PostgreSQL (a schema of its
 * own); the latency runs from just before the call to the subscriber's receipt, and "after
 * commit" from the call's resolve. Paths: a relay (`createChangeRelay`) publishing the log to a
 * Redis change transport, read by a `createChangeStream({ log, transport })` subscriber, by a
 * `tracker.changeStream({ transport })` subscriber (the tracker wakes the relay) and by a
 * subscriber in a second process; and embedded mode (`tracker.changeStream()`, no transport).
 * Every path runs one write at a time (steady) and with 8 writers in flight (loaded), in rounds
 * that rotate the order of the paths.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import type { ChangeTransport } from '@actor-cache/core'
import { createPrismaChangeLog, migrate } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import { type AnyRedisClient, createRedisChangeTransport } from '@actor-cache/redis'
import {
  type ChangeStream,
  type ChangeSubscription,
  createChangeRelay,
  createChangeStream,
  createStateTracker,
  type StateTracker,
} from '@actor-cache/state-tracker'
import pg from 'pg'
import { createClient } from 'redis'
import { grid } from './harness.js'
import { actorState } from './workload.js'

/** Options of the streams suite. */
export interface StreamsSuiteOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string
  /** @default process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' */
  databaseUrl?: string
  /** Rounds; each runs every path once per load, in a rotated order. @default 3 */
  rounds?: number
  /** Samples per path per round at one write in flight. @default 60 */
  steady?: number
  /** Writers in flight in the loaded runs. @default 8 */
  writers?: number
  /** Samples per writer per path per round in the loaded runs. @default 8 */
  loaded?: number
  /** Shards of the change transport. @default 4 */
  shards?: number
  /** Also run a subscriber in a second process. @default true */
  childProcess?: boolean
  log?: (line: string) => void
}

/** Latency figures of one path at one load (ms). */
export interface StreamLatency {
  path: string
  load: 'steady' | 'loaded'
  samples: number
  p50: number
  p90: number
  p99: number
  max: number
  /** From the write's resolve (after commit) to the receipt. */
  commitP50: number
  commitP99: number
}

const RAW = 'raw Redis Streams XADD → XREAD'
/** Longest wait for one change to arrive before the run fails (ms). */
const ARRIVAL_TIMEOUT = 15_000
const CHILD_FLAG = '--actor-cache-streams-child'

/** A high-resolution wall clock (ms) that two processes of one machine share. */
const now = (): number => performance.timeOrigin + performance.now()

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number

/** Waits for the receipt of each numbered write. */
class Arrivals {
  readonly #waiting = new Map<number, (at: number) => void>()
  readonly #early = new Map<number, number>()

  /** Resolves with the receipt time of write `i` (its receipt may come before the call). */
  expect(i: number): Promise<number> {
    const early = this.#early.get(i)
    if (early !== undefined) {
      this.#early.delete(i)
      return Promise.resolve(early)
    }
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(i)
        reject(new Error(`change ${i} did not arrive within ${ARRIVAL_TIMEOUT} ms`))
      }, ARRIVAL_TIMEOUT)
      this.#waiting.set(i, (at) => {
        clearTimeout(timer)
        resolve(at)
      })
    })
  }

  arrived(i: number, at: number): void {
    const wake = this.#waiting.get(i)
    if (wake === undefined) {
      this.#early.set(i, at)
      return
    }
    this.#waiting.delete(i)
    wake(at)
  }
}

/** One way from a write to a subscriber. */
interface Path {
  name: string
  /** Writes change `i` from writer `lane`; resolves once it is committed. */
  write(lane: number, i: number): Promise<unknown>
}

interface Sample {
  total: number
  afterCommit: number
}

let sequence = 0

/** `perLane` writes on each of `lanes` writers, each waiting for its receipt before the next. */
async function run(
  path: Path,
  arrivals: Arrivals,
  lanes: number,
  perLane: number,
): Promise<Sample[]> {
  const out: Sample[] = []
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let k = 0; k < perLane; k++) {
        const i = ++sequence
        const arrived = arrivals.expect(i)
        const t0 = now()
        await path.write(lane, i)
        const committed = now()
        const at = await arrived
        out.push({ total: at - t0, afterCommit: at - committed })
      }
    }),
  )
  return out
}

function figures(path: string, load: StreamLatency['load'], samples: Sample[]): StreamLatency {
  const total = samples.map((s) => s.total).sort((a, b) => a - b)
  const commit = samples.map((s) => s.afterCommit).sort((a, b) => a - b)
  return {
    path,
    load,
    samples: samples.length,
    p50: quantile(total, 0.5),
    p90: quantile(total, 0.9),
    p99: quantile(total, 0.99),
    max: total.at(-1) as number,
    commitP50: quantile(commit, 0.5),
    commitP99: quantile(commit, 0.99),
  }
}

/** Raw Redis Streams: XADD on `writer`, a blocked XREAD loop on `reader`. */
function rawPath(
  writer: AnyRedisClient,
  reader: AnyRedisClient,
  key: string,
  payload: (i: number) => string,
  arrivals: Arrivals,
): { path: Path; stop(): Promise<void> } {
  type Entry = [string, string[]]
  let stopped = false
  const send = (client: AnyRedisClient, args: string[]) =>
    (client as unknown as { sendCommand(a: string[]): Promise<unknown> }).sendCommand(args)
  const loop: Promise<void> = (async () => {
    // from the start of this run's (new) stream: with '$', an entry added between two blocked
    // reads would be skipped
    let last = '0-0'
    while (!stopped) {
      const reply = (await send(reader, [
        'XREAD',
        'BLOCK',
        '100',
        'COUNT',
        '100',
        'STREAMS',
        key,
        last,
      ])) as [string, Entry[]][] | Map<string, Entry[]> | Record<string, Entry[]> | null
      const at = now()
      // RESP3 (node-redis 6's default) answers a map of streams, RESP2 a list of pairs
      const streams: Entry[][] =
        reply === null
          ? []
          : Array.isArray(reply)
            ? reply.map(([, entries]) => entries)
            : reply instanceof Map
              ? [...reply.values()]
              : Object.values(reply)
      for (const entries of streams) {
        for (const [id, fields] of entries) {
          last = id
          const record = JSON.parse(fields[1] as string) as { newValue: { i: number } }
          arrivals.arrived(record.newValue.i, at)
        }
      }
    }
  })()
  // a failed read fails the run through the arrivals it never reports (and is not unhandled)
  loop.catch((error: unknown) => process.stderr.write(`raw XREAD loop: ${String(error)}\n`))
  return {
    path: { name: RAW, write: (_lane, i) => send(writer, ['XADD', key, '*', 'c', payload(i)]) },
    async stop() {
      stopped = true
      await loop.catch(() => {})
    },
  }
}

/** Feeds every record a subscription delivers into `arrivals` until it ends. */
function consume(sub: ChangeSubscription, arrivals: Arrivals): Promise<void> {
  return (async () => {
    for await (const r of sub) arrivals.arrived((r.newValue as { i: number }).i, now())
  })()
}

/** `trackChange` of entity `<lane>` of `type`: a create first, updates after. */
function trackerPath(
  name: string,
  tracker: StateTracker,
  type: string,
  payload: (i: number) => unknown,
): Path {
  const created = new Set<number>()
  return {
    name,
    write(lane, i) {
      const first = !created.has(lane)
      created.add(lane)
      return tracker.trackChange({
        entityType: type,
        entityId: `actor:${lane}`,
        changeType: first ? 'create' : 'update',
        newValue: payload(i),
        userId: 'user:bench',
      })
    },
  }
}

/** Connected node-redis 6 clients, or an error saying what to start. */
async function redisClient(url: string): Promise<AnyRedisClient> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 3000 } })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `the streams benchmark needs Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as unknown as AnyRedisClient
}

interface ChildData {
  databaseUrl: string
  schema: string
  redisUrl: string
  prefix: string
  name: string
  shards: number
  type: string
}

type ChildMessage = { ready: true } | { i: number; at: number } | { error: string }

/** The subscriber of the second process: a change stream over the transport, reporting receipts. */
async function childMain(data: ChildData): Promise<void> {
  const prisma = await connectPostgres(data.databaseUrl, { schema: data.schema, max: 2 })
  const client = await redisClient(data.redisUrl)
  const transport = createRedisChangeTransport({
    client,
    prefix: data.prefix,
    name: data.name,
    shards: data.shards,
  })
  const stream = createChangeStream({ log: createPrismaChangeLog({ prisma }), transport })
  const sub = stream.subscribe({ entityType: data.type }, { fromNow: true })
  await sub.start()
  const send = (m: ChildMessage) => {
    if (process.connected) process.send?.(m)
  }
  const done = (async () => {
    for await (const r of sub) send({ i: (r.newValue as { i: number }).i, at: now() })
  })()
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    void (async () => {
      await stream.close()
      await done.catch(() => {})
      await transport.close()
      await (client as unknown as { close(): Promise<void> }).close()
      await prisma.$disconnect()
      if (process.connected) process.disconnect()
    })()
  }
  process.on('message', stop)
  // the parent died without asking: close and leave anyway
  process.on('disconnect', stop)
  send({ ready: true })
}

if (process.argv.includes(CHILD_FLAG)) {
  const data = JSON.parse(process.env.ACTOR_CACHE_STREAMS_CHILD ?? '{}') as ChildData
  childMain(data).catch((error: unknown) => {
    process.send?.({ error: String((error as Error)?.stack ?? error) })
    process.exit(1)
  })
}

/** Starts the second process and waits until its subscription has started. */
async function startChild(data: ChildData, arrivals: Arrivals): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG], {
    env: { ...process.env, ACTOR_CACHE_STREAMS_CHILD: JSON.stringify(data) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the subscriber process did not start')),
      30_000,
    )
    child.on('message', (m: ChildMessage) => {
      if ('ready' in m) {
        clearTimeout(timer)
        resolve()
      } else if ('error' in m) {
        clearTimeout(timer)
        reject(new Error(`subscriber process: ${m.error}`))
      } else arrivals.arrived(m.i, m.at)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the subscriber process exited (${code})`))
    })
  })
  return child
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.send('close')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

/** Latency from a write to a subscriber: raw Redis Streams, the relay paths, embedded mode. */
export async function runStreamsSuite(options: StreamsSuiteOptions = {}): Promise<StreamLatency[]> {
  const log = options.log ?? console.log
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const databaseUrl =
    options.databaseUrl ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
  const rounds = options.rounds ?? 3
  const steady = options.steady ?? 60
  const writers = options.writers ?? 8
  const loaded = options.loaded ?? 8
  const shards = options.shards ?? 4
  const withChild = options.childProcess ?? true
  const tag = `${process.pid}_${randomUUID().slice(0, 6)}`
  const schema = `ac_bench_streams_${tag}`
  const prefix = `acb-streams-${tag}`
  const name = 'changes'

  const admin = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (error) {
    throw new Error(
      `the streams benchmark needs PostgreSQL at ${databaseUrl} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  const started = now()
  const closers: (() => Promise<unknown>)[] = []
  const close = async () => {
    const t0 = now()
    for (const c of closers.splice(0).reverse()) await c().catch(() => {})
    process.stderr.write(`streams: cleaned up in ${((now() - t0) / 1000).toFixed(1)} s\n`)
  }
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`)
    closers.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await admin.end()
    })
    // writers on one pool, the relay and the subscribers' log reads on another (as a relay
    // running elsewhere would be)
    const writerDb: PrismaClient = await connectPostgres(databaseUrl, { schema, max: writers + 2 })
    closers.push(() => writerDb.$disconnect())
    await migrate(writerDb)
    const readerDb: PrismaClient = await connectPostgres(databaseUrl, { schema, max: 4 })
    closers.push(() => readerDb.$disconnect())
    const writeLog = createPrismaChangeLog({ prisma: writerDb })
    const readLog = createPrismaChangeLog({ prisma: readerDb })

    const clients: AnyRedisClient[] = []
    const client = async () => {
      const c = await redisClient(redisUrl)
      clients.push(c)
      return c
    }
    closers.push(async () => {
      const c = clients[0]
      if (c !== undefined) {
        const any = c as unknown as {
          scanIterator(o: object): AsyncIterable<string[]>
          unlink(k: string[]): Promise<number>
        }
        for await (const keys of any.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
          if (keys.length > 0) await any.unlink(keys)
        }
      }
      for (const c of clients.splice(0)) await (c as unknown as { close(): Promise<void> }).close()
    })
    const transport = async (): Promise<ChangeTransport> => {
      const t = createRedisChangeTransport({ client: await client(), prefix, name, shards })
      closers.push(() => t.close())
      return t
    }

    const arrivals = new Arrivals()
    const payload = (i: number) => ({ i, ...actorState(i) })
    // the raw payload: the JSON of a change record as the relay publishes it
    const probe = createStateTracker({ log: writeLog, systemId: 'bench' })
    const sample = await probe.trackChange({
      entityType: 'bench_probe',
      entityId: 'actor:0',
      changeType: 'create',
      newValue: payload(0),
      userId: 'user:bench',
    })
    const recordJson = (i: number) => JSON.stringify({ ...sample, newValue: payload(i) })
    const recordBytes = Buffer.byteLength(recordJson(1_000_000))

    // raw Redis Streams
    const raw = rawPath(await client(), await client(), `${prefix}:raw`, recordJson, arrivals)
    closers.push(() => raw.stop())

    // the relay, publishing the log to the transport
    const relay = createChangeRelay({ log: readLog, transport: await transport() })
    relay.start()
    closers.push(() => relay.close())

    const follow = async (stream: ChangeStream, type: string) => {
      let done: Promise<void> = Promise.resolve()
      // closed in reverse: the stream first, then its consumer ends
      closers.push(() => done)
      closers.push(() => stream.close())
      const sub = stream.subscribe({ entityType: type }, { fromNow: true })
      await sub.start()
      done = consume(sub as ChangeSubscription, arrivals)
    }
    const systemId = 'bench'
    // a subscriber of its own transport; the writing tracker knows no stream (nothing wakes the relay)
    const plain = createStateTracker({ log: writeLog, systemId })
    await follow(createChangeStream({ log: readLog, transport: await transport() }), 'bench_plain')
    // the tracker's own stream over the transport: its writes wake the relay
    const waking = createStateTracker({ log: writeLog, systemId })
    await follow(waking.changeStream({ transport: await transport() }), 'bench_waking')
    // embedded mode
    const embedded = createStateTracker({ log: writeLog, systemId })
    await follow(embedded.changeStream(), 'bench_embedded')

    const paths: Path[] = [
      raw.path,
      trackerPath('relay → createChangeStream({ log, transport })', plain, 'bench_plain', payload),
      trackerPath('relay → tracker.changeStream({ transport })', waking, 'bench_waking', payload),
      trackerPath('embedded: tracker.changeStream()', embedded, 'bench_embedded', payload),
    ]
    if (withChild) {
      const child = await startChild(
        { databaseUrl, schema, redisUrl, prefix, name, shards, type: 'bench_child' },
        arrivals,
      )
      closers.push(() => stopChild(child))
      paths.push(
        trackerPath(
          'relay → a second process (writes wake the relay)',
          waking,
          'bench_child',
          payload,
        ),
      )
    }

    process.stderr.write(`streams: set up in ${((now() - started) / 1000).toFixed(1)} s\n`)
    // warm-up: every path, both loads (also creates the entities)
    for (const path of paths) {
      await run(path, arrivals, 1, 20)
      await run(path, arrivals, writers, 3)
    }
    const samples = new Map<string, Sample[]>()
    const add = (key: string, got: Sample[]) =>
      samples.set(key, [...(samples.get(key) ?? []), ...got])
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < paths.length; j++) {
        const path = paths[(j + r) % paths.length] as Path
        add(`${path.name}\u0000steady`, await run(path, arrivals, 1, steady))
        add(`${path.name}\u0000loaded`, await run(path, arrivals, writers, loaded))
      }
      process.stderr.write(
        `streams: round ${r + 1}/${rounds} at ${((now() - started) / 1000).toFixed(1)} s\n`,
      )
    }
    const results: StreamLatency[] = []
    for (const load of ['steady', 'loaded'] as const) {
      for (const path of paths) {
        results.push(figures(path.name, load, samples.get(`${path.name}\u0000${load}`) ?? []))
      }
    }
    const relayStats = relay.stats()
    log(
      report(results, {
        recordBytes,
        writers,
        rounds,
        relay: `relay: ${relayStats.role}, ${relayStats.published} records published, ${relayStats.errors} errors`,
      }),
    )
    return results
  } finally {
    await close()
  }
}

function report(
  results: readonly StreamLatency[],
  info: { recordBytes: number; writers: number; rounds: number; relay: string },
): string {
  const ms = (v: number) => v.toFixed(2)
  const lines = [
    `\n## Change streams: latency from a write to a subscriber (ms)\n`,
    `Raw: XADD of a ${info.recordBytes}-byte change-record JSON on one node-redis 6 connection, read by a blocked XREAD on another. The other paths write with \`trackChange\` into PostgreSQL; "total" runs from just before the call, "after commit" from its resolve. Steady: one write at a time; loaded: ${info.writers} writers in flight, each waiting for its change to arrive. ${info.rounds} rounds, paths in rotated order; ${info.relay}.\n`,
    `Target: none named; issue 15 asks for p50/p99 reported beside raw XADD → XREAD (ratios are total against raw total at the same load).\n`,
    `A \`trackChange\` wakes the relay only through a stream of its own tracker (\`tracker.changeStream({ transport })\`): the writer of the \`createChangeStream\` path has none, so its changes wait for the relay's next poll (\`pollInterval\`, 50 ms).\n`,
  ]
  for (const load of ['steady', 'loaded'] as const) {
    const rows = results.filter((r) => r.load === load)
    const base = rows.find((r) => r.path === RAW)
    lines.push(
      `\n### ${load === 'steady' ? 'Steady: 1 write in flight' : `Loaded: ${info.writers} writers in flight`}\n`,
    )
    lines.push(
      grid(
        [
          'path',
          'n',
          'p50',
          'p90',
          'p99',
          'max',
          'p50 after commit',
          'p99 after commit',
          'p50 vs raw',
          'p99 vs raw',
        ],
        rows.map((r) => [
          r.path,
          String(r.samples),
          ms(r.p50),
          ms(r.p90),
          ms(r.p99),
          ms(r.max),
          ms(r.commitP50),
          ms(r.commitP99),
          base ? `${(r.p50 / base.p50).toFixed(1)}x` : '',
          base ? `${(r.p99 / base.p99).toFixed(1)}x` : '',
        ]),
      ),
    )
  }
  return lines.join('\n')
}
