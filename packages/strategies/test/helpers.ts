/**
 * Real services for the tests: Redis at REDIS_URL (default 127.0.0.1:6379, a unique key prefix per
 * call) and PostgreSQL at DATABASE_URL (a fresh schema per call, migrated). A test that cannot
 * reach one fails, naming what to start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { migrate } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import type { AnyRedisClient } from '@actor-cache/redis'
import { createClient } from 'redis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

/** A short unique id for prefixes and schema names. */
export const uid = (): string => randomUUID().replaceAll('-', '').slice(0, 12)

/** A connected node-redis client. */
export async function redis(url = REDIS_URL): Promise<AnyRedisClient> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    // generous: a loaded machine may take seconds to accept; an unreachable server still fails fast
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
  return client as unknown as AnyRedisClient
}

/** Deletes every key under `prefix:` (test cleanup). */
export async function dropPrefix(client: AnyRedisClient, prefix: string): Promise<void> {
  const c = client as unknown as ReturnType<typeof createClient>
  for await (const keys of c.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length > 0) await c.unlink(keys)
  }
}

export interface TestDb {
  prisma: PrismaClient
  schema: string
  url: string
  drop(): Promise<void>
}

/** A fresh, migrated schema on the PostgreSQL server. */
export async function postgres(url = DATABASE_URL): Promise<TestDb> {
  const schema = `ac_strat_${uid()}`
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
    url,
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
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A promise with its resolve and reject. */
export function deferred<T>(): {
  promise: Promise<T>
  resolve: (v: T) => void
  reject: (e: unknown) => void
} {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A clock tests move by hand. */
export function fakeClock(start = Date.now()): {
  now: () => number
  advance: (ms: number) => void
} {
  let t = start
  return { now: () => t, advance: (ms) => (t += ms) }
}

/** Decides what a store method call does: `call()` runs it as it is. */
export type Around = (method: string, call: () => unknown, args: unknown[]) => unknown

/** A store whose method calls go through `around` (to delay, fail or count them). */
export function intercept<S extends object>(store: S, around: Around): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      return (...args: unknown[]) =>
        around(String(prop), () => (v as (...a: unknown[]) => unknown).apply(target, args), args)
    },
  })
}

/** A tier whose stores' method calls go through `around` (see {@link intercept}). */
export function interceptTier<T extends { namespace(...a: never[]): object }>(
  tier: T,
  around: Around,
): T {
  return new Proxy(tier, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      if (prop !== 'namespace') return v.bind(target)
      return (...args: never[]) => intercept((v as T['namespace']).apply(target, args), around)
    },
  })
}

/**
 * Resolves on the next event-loop turn: every promise continuation queued before has run by then.
 * For background work that is unblocked and touches only in-memory tiers (no timers, no I/O), this
 * is an ordering guarantee, not a guess about how fast the machine is.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * Waits until `Date.now()` is past `after` (bounded polling), so what happens next is dated later
 * than it on a millisecond clock, however fast or slow the machine is.
 */
export async function clockPast(after: number): Promise<void> {
  await eventually(() => Date.now() > after, 5_000, `the clock to pass ${after}`)
}

/** How a child process ended. */
export interface ChildExit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** Most characters of a child's stdout and stderr kept for failure messages (the rest is read and dropped). */
const KEEP_OUTPUT = 64 * 1024
const keepTail = (s: string): string => (s.length > KEEP_OUTPUT ? s.slice(-KEEP_OUTPUT) : s)

/**
 * A child process running a fixture of test/fixtures (see fixtures/common.mjs). The protocol runs
 * over the IPC channel, never over a pipe: every message the child sends is one line in
 * {@link lines}, in order, and `closed` resolves only after the child exited AND every message and
 * all of its output were read. Its stdout and stderr are read as they come (so those pipes never
 * fill), the last 64 KB of each kept for failure messages.
 */
export class FixtureProcess {
  readonly proc: ChildProcess
  /** Messages from the child, in the order it sent them. */
  readonly lines: string[] = []
  stdout = ''
  stderr = ''
  exit: ChildExit | undefined
  readonly closed: Promise<ChildExit>
  readonly #changed = new Set<() => void>()

  constructor(script: string, env: Record<string, string>, cwd: string) {
    this.proc = spawn(process.execPath, [script], {
      cwd,
      env: { ...process.env, REDIS_URL, DATABASE_URL, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    this.proc.stdout?.setEncoding('utf8')
    this.proc.stdout?.on('data', (chunk: string) => {
      this.stdout = keepTail(this.stdout + chunk)
    })
    this.proc.stderr?.setEncoding('utf8')
    this.proc.stderr?.on('data', (chunk: string) => {
      this.stderr = keepTail(this.stderr + chunk)
    })
    this.proc.on('message', (message: unknown) => {
      this.lines.push(String(message))
      this.#notify()
    })
    this.proc.on('error', (error) => {
      this.stderr = keepTail(`${this.stderr}\n[child process error] ${error.message}`)
    })
    // 'close': the process exited AND its IPC channel, stdout and stderr were read to the end
    this.closed = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        this.exit = { code, signal }
        this.#notify()
        resolve(this.exit)
      })
    })
  }

  #notify(): void {
    for (const f of [...this.#changed]) f()
  }

  /** What the child said so far, for failure messages. */
  describe(): string {
    const last = this.lines.slice(-5).map((l) => `    ${l.slice(0, 300)}`)
    return (
      `child pid ${this.proc.pid}, exit ${JSON.stringify(this.exit ?? 'none yet')}, ` +
      `${this.lines.length} messages${last.length > 0 ? `, the last:\n${last.join('\n')}` : ''}\n` +
      `  stderr:\n${this.stderr}`
    )
  }

  /**
   * The first message matching `test` (one already received, or the next to come). Fails at once
   * when the child exits without sending one, and after `ms` (a generous bound: only a hang
   * should reach it) with what the child said so far.
   */
  waitFor(test: (line: string) => boolean, ms: number, what: string): Promise<string> {
    let seen = 0
    return new Promise<string>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer)
        this.#changed.delete(check)
      }
      const check = (): void => {
        for (; seen < this.lines.length; seen++) {
          const line = this.lines[seen] as string
          if (test(line)) {
            finish()
            resolve(line)
            return
          }
        }
        if (this.exit !== undefined) {
          finish()
          reject(new Error(`the child exited before ${what}: ${this.describe()}`))
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`timed out after ${ms} ms waiting for ${what}: ${this.describe()}`))
      }, ms)
      this.#changed.add(check)
      check()
    })
  }

  /** Sends a command (fixtures/common.mjs `waitForCommand`); a child already gone ignores it. */
  send(command: string): void {
    if (this.proc.connected) this.proc.send(command, () => {})
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exit === undefined) this.proc.kill(signal)
  }
}
