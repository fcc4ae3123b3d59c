/**
 * Real services for the tests: Redis at REDIS_URL (a unique key prefix per test), PostgreSQL at
 * DATABASE_URL (a fresh schema per test), and private redis-server processes the tests start,
 * count commands on and kill. A test that cannot reach a service fails, naming what to start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { migrate } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import type { AnyRedisClient } from '@actor-cache/redis'
import fc from 'fast-check'
import { createClient } from 'redis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

export const uid = (): string => randomUUID().replaceAll('-', '').slice(0, 12)

const make = () => createClient({ disableOfflineQueue: true })
export type Redis = ReturnType<typeof make>

/** A connected node-redis client (no offline queue: a down server fails calls at once). */
export async function redis(url = REDIS_URL): Promise<Redis> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: 50, connectTimeout: 10_000 },
  })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `these tests need Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as Redis
}

export const asStoreClient = (c: Redis): AnyRedisClient => c as unknown as AnyRedisClient

/** Every key under `prefix` with its raw value (strings only). */
export async function scanValues(c: Redis, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for await (const keys of c.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    for (const k of keys) {
      const type = await c.type(k)
      const v = type === 'string' ? await c.get(k) : JSON.stringify(await c.dump(k))
      out.set(k, String(v))
    }
  }
  return out
}

export async function dropPrefix(c: Redis, prefix: string): Promise<void> {
  for await (const keys of c.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await c.unlink(keys)
  }
}

export interface TestDb {
  prisma: PrismaClient
  schema: string
  drop(): Promise<void>
}

/** A fresh, migrated schema; `url` may point at a proxy in front of DATABASE_URL. */
export async function postgres(url = DATABASE_URL): Promise<TestDb> {
  const schema = `ac_sec_${uid()}`
  const admin = await connectPostgres(DATABASE_URL)
  try {
    await admin.$executeRawUnsafe(`CREATE SCHEMA "${schema}"`)
  } catch (error) {
    await admin.$disconnect()
    throw new Error(
      `these tests need PostgreSQL at ${DATABASE_URL} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  const prisma = await connectPostgres(url, { schema, connectionTimeoutMillis: 10_000 })
  await migrate(prisma)
  return {
    prisma,
    schema,
    async drop() {
      await prisma.$disconnect()
      await admin.$executeRawUnsafe(`DROP SCHEMA "${schema}" CASCADE`)
      await admin.$disconnect()
    },
  }
}

/** Polls `check` every 5 ms until it holds, or fails after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * A TCP proxy in front of PostgreSQL that counts the bytes clients send through it: a test reads
 * the count before and after a phase to prove no statement reached the database.
 */
export class CountingProxy {
  #server: Server | undefined
  readonly #sockets = new Set<Socket>()
  bytesToServer = 0
  port = 0
  constructor(
    readonly host: string,
    readonly target: number,
  ) {}
  async start(): Promise<void> {
    this.#server = createServer((client) => {
      const upstream = createConnection(this.target, this.host)
      for (const s of [client, upstream]) {
        this.#sockets.add(s)
        s.on('close', () => this.#sockets.delete(s))
        s.on('error', () => {})
      }
      client.on('data', (chunk: Buffer) => {
        this.bytesToServer += chunk.byteLength
      })
      client.pipe(upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    const server = this.#server
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    this.port = (server.address() as { port: number }).port
  }
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise((r) => this.#server?.close(r))
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = createConnection(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

function free(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

export interface RedisServer {
  url: string
  start(): Promise<void>
  kill(): Promise<void>
}

/** A private redis-server on a port of its own; the test can kill and restart it. */
export async function privateRedis(): Promise<RedisServer> {
  let failure: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    let port = 0
    for (let i = 0; i < 50 && port === 0; i++) {
      const p = 20_000 + Math.floor(Math.random() * 12_000)
      if (await free(p)) port = p
    }
    const server = redisServer(port)
    try {
      await server.start()
      return server
    } catch (error) {
      await server.kill()
      failure = error
      if (!/address already in use/i.test(String(error))) break
    }
  }
  throw failure
}

function redisServer(port: number): RedisServer {
  let child: ChildProcess | undefined
  let output = ''
  return {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      output = ''
      const proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      child = proc
      for (const stream of [proc.stdout, proc.stderr]) {
        stream?.setEncoding('utf8')
        stream?.on('data', (chunk: string) => {
          output = (output + chunk).slice(-8192)
        })
      }
      let exited: string | undefined
      proc.on('error', (error) => {
        exited = `could not start redis-server (is it installed?): ${error.message}`
      })
      proc.on('exit', (code, signal) => {
        exited ??= `redis-server exited (code ${code}, signal ${signal})`
      })
      await eventually(
        async () => exited !== undefined || (await accepts(port)),
        60_000,
        `redis-server to accept connections on port ${port}`,
      )
      if (exited !== undefined) throw new Error(`${exited} on port ${port}:\n${output}`)
    },
    async kill() {
      const proc = child
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
      const gone = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGKILL')
      await gone
    },
  }
}

/** Commands the server has run, by name (INFO commandstats), excluding `info` itself. */
export async function commandCounts(c: Redis): Promise<Map<string, number>> {
  const text = await c.info('commandstats')
  const out = new Map<string, number>()
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] !== 'info') out.set(m[1] as string, Number(m[2]))
  }
  return out
}

/** Property runs that print seed and path on failure; `FC_SEED` / `FC_PATH` replay one. */
export async function assertReplayable<T>(
  property: fc.IAsyncPropertyWithHooks<T> | fc.IPropertyWithHooks<T>,
  numRuns: number,
): Promise<void> {
  const seed = process.env.FC_SEED
  const path = process.env.FC_PATH
  const factor = Math.max(1, Number(process.env.LONG_RUNS ?? 1) || 1)
  const params: fc.Parameters<T> = {
    numRuns: numRuns * factor,
    ...(seed === undefined ? {} : { seed: Number(seed) }),
    ...(path === undefined ? {} : { path, endOnFailure: true }),
  }
  const details = await fc.check(property as fc.IAsyncPropertyWithHooks<T>, params)
  if (!details.failed) return
  const report = fc.defaultReportMessage(details) ?? 'property failed'
  process.stderr.write(
    `\n${report}\nreplay: FC_SEED=${details.seed} FC_PATH="${details.counterexamplePath}"\n`,
  )
  throw new Error(report)
}

/** A fixed 32-byte key for tests (never a real one). */
export const testKey = (n: number): Uint8Array => new Uint8Array(32).fill(n)
