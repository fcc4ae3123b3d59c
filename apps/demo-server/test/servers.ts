/**
 * Services of the tests that need them: a private redis-server the tests can kill and restart on
 * the same port (the mechanism of the strategies and metrics packages' fault tests), and a
 * PostgreSQL schema of their own.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { connectPostgres } from '@actor-cache/prisma-store/client'

/** Polls `check` every 20 ms until it holds; fails after `ms` (a bound on a hang, not a timing). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** PostgreSQL of the tests: `DATABASE_URL`, else the local server's database `test`. */
export const DATABASE_URL: string =
  process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

type Admin = Awaited<ReturnType<typeof connectPostgres>>

/** A schema of the test's own in {@link DATABASE_URL}: its URL, raw SQL on it, and its removal. */
export interface TestSchema {
  readonly name: string
  /** `DATABASE_URL` with `?schema=` this schema. */
  readonly url: string
  query<T = unknown>(sql: string): Promise<T[]>
  drop(): Promise<void>
}

/** Creates a schema named `<prefix>_<random>`; fails saying what to start when PostgreSQL is not there. */
export async function testSchema(prefix: string): Promise<TestSchema> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 10)}`
  let admin: Admin
  try {
    admin = await connectPostgres(DATABASE_URL, { connectionTimeoutMillis: 3000 })
    await admin.$executeRawUnsafe(`CREATE SCHEMA "${name}"`)
  } catch (error) {
    throw new Error(
      `this test needs PostgreSQL at ${DATABASE_URL} with the database "test" (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  const url = new URL(DATABASE_URL)
  url.searchParams.set('schema', name)
  return {
    name,
    url: url.toString(),
    query: (sql) => admin.$queryRawUnsafe(sql),
    async drop() {
      try {
        await admin.$executeRawUnsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
      } finally {
        await admin.$disconnect()
      }
    },
  }
}

/** Does something accept TCP connections on 127.0.0.1:`port`? */
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

/** Can a server listen on 127.0.0.1:`port` right now? */
function free(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

/**
 * A port below the kernel's ephemeral range: outgoing connections (this suite opens many) and
 * `listen(0)` never take it, so it stays free between a kill and the restart on the same port.
 */
async function quietPort(): Promise<number> {
  let low = 32768
  try {
    low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    )
  } catch {}
  const from = 20_000
  const to = Math.max(from + 1000, low) - 1
  for (let i = 0; i < 50; i++) {
    const port = from + Math.floor(Math.random() * (to - from))
    if (await free(port)) return port
  }
  throw new Error(`no free port found in ${from}..${to}`)
}

export interface RedisServer {
  url: string
  /** Starts it (again, on the same port) and waits until it accepts connections. */
  start(): Promise<void>
  /** SIGKILL, and waits until the process is gone (its port closed). */
  kill(): Promise<void>
  /** SIGSTOP: the server keeps its connections but answers nothing until {@link resume}. */
  pause(): void
  resume(): void
}

/** A private redis-server, started, on a port of its own; the test can kill and restart it. */
export async function privateRedis(): Promise<RedisServer> {
  let failure: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = redisServer(await quietPort())
    try {
      await server.start()
      return server
    } catch (error) {
      await server.kill()
      failure = error
      // only when another process took the port between the probe and redis-server's bind
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
      // read its output as it comes (the pipe never fills), keep the end for failure messages
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
        `redis-server to accept connections on port ${port} (install redis-server if it is missing)`,
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
    pause() {
      child?.kill('SIGSTOP')
    },
    resume() {
      child?.kill('SIGCONT')
    },
  }
}
