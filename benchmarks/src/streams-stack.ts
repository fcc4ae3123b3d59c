/**
 * What the streams benchmark runs on: a PostgreSQL schema and Redis key prefix of its own, the
 * relay, the subscribers of every path (one in a second process) and the paths' writers. What it
 * opens, `close` closes, in reverse order, and removes the schema and the keys.
 */
import { randomUUID } from 'node:crypto'
import type { ChangeTransport } from '@actor-cache/core'
import { createPrismaChangeLog, migrate } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import { type AnyRedisClient, createRedisChangeTransport } from '@actor-cache/redis'
import {
  type ChangeRelay,
  type ChangeStream,
  type ChangeSubscription,
  createChangeRelay,
  createChangeStream,
  createStateTracker,
} from '@actor-cache/state-tracker'
import type pg from 'pg'
import { connectPostgresAdmin } from './connect-postgres.js'
import { connectRedis } from './connect-redis.js'
import { startChild, stopChild } from './streams-child.js'
import { Arrivals, consume, now, type Path, rawPath, trackerPath } from './streams-paths.js'
import { actorState } from './workload.js'

/** Where the stack runs and how wide. */
export interface StreamsStackOptions {
  redisUrl: string
  databaseUrl: string
  /** Writers in flight in the loaded runs (the writers' pool is sized for them). */
  writers: number
  shards: number
  /** Also run a subscriber in a second process. */
  childProcess: boolean
}

/** The opened stack. */
export interface StreamsStack {
  paths: Path[]
  arrivals: Arrivals
  relay: ChangeRelay
  /** Bytes of a change record's JSON, the raw path's payload. */
  recordBytes: number
  close(): Promise<void>
}

/** Closes what was opened, last first; a failure does not stop the others. */
class Closers {
  readonly #list: (() => Promise<unknown>)[] = []

  push(close: () => Promise<unknown>): void {
    this.#list.push(close)
  }

  async close(): Promise<void> {
    const t0 = now()
    for (const c of this.#list.splice(0).reverse()) await c().catch(() => {})
    process.stderr.write(`streams: cleaned up in ${((now() - t0) / 1000).toFixed(1)} s\n`)
  }
}

/** Opens the stack; on a failure, closes what it had opened and throws. */
export async function openStreamsStack(options: StreamsStackOptions): Promise<StreamsStack> {
  const admin = await connectPostgresAdmin(options.databaseUrl, 'streams')
  const started = now()
  const closers = new Closers()
  try {
    const stack = await build(options, admin, closers)
    process.stderr.write(`streams: set up in ${((now() - started) / 1000).toFixed(1)} s\n`)
    return stack
  } catch (error) {
    await closers.close()
    throw error
  }
}

/**
 * A schema of its own with the migrations applied: the writers on one pool, the relay and the
 * subscribers' log reads on another (as a relay running elsewhere would be).
 */
async function openLogs(
  admin: pg.Client,
  databaseUrl: string,
  schema: string,
  writers: number,
  closers: Closers,
) {
  await admin.query(`CREATE SCHEMA "${schema}"`)
  closers.push(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin.end()
  })
  const writerDb = await connectPostgres(databaseUrl, { schema, max: writers + 2 })
  closers.push(() => writerDb.$disconnect())
  await migrate(writerDb)
  const readerDb = await connectPostgres(databaseUrl, { schema, max: 4 })
  closers.push(() => readerDb.$disconnect())
  return {
    writeLog: createPrismaChangeLog({ prisma: writerDb }),
    readLog: createPrismaChangeLog({ prisma: readerDb }),
  }
}

/** Redis clients and change transports under `prefix`; closing removes the prefix's keys. */
function redisParts(options: StreamsStackOptions, prefix: string, name: string, closers: Closers) {
  const clients: AnyRedisClient[] = []
  const client = async () => {
    const c = (await connectRedis(options.redisUrl, 'streams')) as unknown as AnyRedisClient
    clients.push(c)
    return c
  }
  closers.push(async () => {
    const c = clients[0] as unknown as
      | {
          scanIterator(o: object): AsyncIterable<string[]>
          unlink(k: string[]): Promise<number>
        }
      | undefined
    if (c !== undefined) {
      for await (const keys of c.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await c.unlink(keys)
      }
    }
    for (const c of clients.splice(0)) await (c as unknown as { close(): Promise<void> }).close()
  })
  const transport = async (): Promise<ChangeTransport> => {
    const t = createRedisChangeTransport({
      client: await client(),
      prefix,
      name,
      shards: options.shards,
    })
    closers.push(() => t.close())
    return t
  }
  return { client, transport }
}

async function build(
  options: StreamsStackOptions,
  admin: pg.Client,
  closers: Closers,
): Promise<StreamsStack> {
  const tag = `${process.pid}_${randomUUID().slice(0, 6)}`
  const schema = `ac_bench_streams_${tag}`
  const prefix = `acb-streams-${tag}`
  const name = 'changes'
  const { writeLog, readLog } = await openLogs(
    admin,
    options.databaseUrl,
    schema,
    options.writers,
    closers,
  )
  const { client, transport } = redisParts(options, prefix, name, closers)
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
  if (options.childProcess) {
    const { databaseUrl, redisUrl, shards } = options
    const child = await startChild(
      { databaseUrl, schema, redisUrl, prefix, name, shards, type: 'bench_child' },
      arrivals,
    )
    closers.push(() => stopChild(child))
    const second = 'relay → a second process (writes wake the relay)'
    paths.push(trackerPath(second, waking, 'bench_child', payload))
  }
  return {
    paths,
    arrivals,
    relay,
    recordBytes: Buffer.byteLength(recordJson(1_000_000)),
    close: () => closers.close(),
  }
}
