/**
 * A throwaway PostgreSQL cluster for tests that crash the server (the shared one at DATABASE_URL
 * must never be killed): `initdb` in a temporary directory and a postmaster on a free port, run
 * as the `postgres` user when the tests run as root (PostgreSQL refuses to run as root).
 * Linux only: the binaries come from PG_BIN, by default /usr/lib/postgresql/15/bin.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { chownSync, existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)
const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'
/** Generous: initdb, crash recovery and start-up on a loaded 2-core machine. */
const START_BOUND_MS = 120_000

/** Polls `check` every `everyMs` until it returns true (true) or `boundMs` pass (false). */
export async function poll(
  check: () => boolean | Promise<boolean>,
  boundMs: number,
  everyMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + boundMs
  while (!(await check())) {
    if (Date.now() > deadline) return false
    await sleep(everyMs)
  }
  return true
}

/** Like {@link poll}, but throws naming `what` when the bound passes. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  boundMs = START_BOUND_MS,
): Promise<void> {
  if (!(await poll(check, boundMs))) throw new Error(`${what}: not within ${boundMs} ms`)
}

/** The uid and gid to run PostgreSQL as: `postgres` when we are root, else ourselves. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
  return { uid, gid }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** Child pids of `pid` (from /proc): the postmaster's backends and auxiliary processes. */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // fields after the parenthesised command: state ppid ...
      const [, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(ppid) === pid) out.push(Number(name))
    } catch {
      // the process exited while we looked
    }
  }
  return out
}

/** True while `pid` runs (a zombie no longer holds anything, so it counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

function running(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null
}

/** One PostgreSQL cluster of its own; see the file comment. */
export class PgCluster {
  readonly port: number
  readonly dir: string
  readonly #ids: { uid: number; gid: number } | undefined
  #postmaster: ChildProcess | undefined
  #log = ''

  private constructor(dir: string, port: number, ids: { uid: number; gid: number } | undefined) {
    this.dir = dir
    this.port = port
    this.#ids = ids
  }

  /** Runs initdb in a fresh temporary directory and starts the server. */
  static async create(): Promise<PgCluster> {
    if (!existsSync(join(BIN, 'initdb'))) {
      throw new Error(`these tests need PostgreSQL's binaries in ${BIN} (or set PG_BIN)`)
    }
    const dir = await mkdtemp(join(tmpdir(), 'ac-pg-'))
    const ids = runAs()
    if (ids) chownSync(dir, ids.uid, ids.gid)
    await run(
      join(BIN, 'initdb'),
      ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'],
      { ...ids, env: { ...process.env, LC_ALL: 'C' } },
    )
    const cluster = new PgCluster(dir, await freePort(), ids)
    await cluster.start()
    return cluster
  }

  /** Connection string of the cluster's `postgres` database. */
  get url(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return running(this.#postmaster) ? this.#postmaster?.pid : undefined
  }

  /**
   * Starts the postmaster (after a crash it runs recovery first) and waits until it accepts
   * connections. Retries while processes of a killed server still hold its shared memory.
   */
  async start(): Promise<void> {
    const deadline = Date.now() + START_BOUND_MS
    for (;;) {
      const child = this.#spawn()
      const exited = new Promise((resolve) => child.once('exit', resolve))
      if (await this.#ready(child, deadline)) return
      if (running(child)) child.kill('SIGKILL')
      if (Date.now() > deadline) {
        throw new Error(`postgres on port ${this.port} did not start:\n${this.#log.slice(-4000)}`)
      }
      await exited
      await sleep(200)
    }
  }

  /**
   * Hangs the server: SIGSTOP to the postmaster and every process it has. Statements sent from
   * now on stay unread in the server's sockets (see {@link unreadConnections}) until
   * {@link kill} makes the kernel reset those connections.
   */
  async freeze(): Promise<void> {
    const pid = this.pid
    if (pid === undefined) return
    process.kill(pid, 'SIGSTOP')
    for (const child of await childrenOf(pid)) {
      try {
        process.kill(child, 'SIGSTOP')
      } catch {
        // already gone
      }
    }
  }

  /** Connections to the server holding bytes it has not read (from /proc/net/tcp). */
  unreadConnections(): number {
    const port = this.port.toString(16).toUpperCase().padStart(4, '0')
    let n = 0
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue ...
      const [, local, , state, queues] = line.trim().split(/\s+/)
      if (local?.endsWith(`:${port}`) && state === '01' && !/:0+$/.test(queues ?? ':0')) n++
    }
    return n
  }

  /**
   * Crashes the server: SIGKILL to the postmaster and then to every process it had, as when the
   * machine or the OOM killer takes them all; returns once none of them runs.
   */
  async kill(): Promise<void> {
    const child = this.#postmaster
    if (child?.pid === undefined || !running(child)) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const children = await childrenOf(child.pid)
    child.kill('SIGKILL')
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    await exited
    await waitFor('the killed server processes exit', () => !children.some(alive))
  }

  /** `pg_ctl stop -m immediate`: the postmaster makes every backend quit without a checkpoint. */
  async stopImmediate(): Promise<void> {
    const child = this.#postmaster
    if (child?.pid === undefined || !running(child)) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    await run(join(BIN, 'pg_ctl'), ['stop', '-m', 'immediate', '-D', join(this.dir, 'data')], {
      ...this.#ids,
    })
    await exited
  }

  /** Stops the server and deletes its directory. */
  async destroy(): Promise<void> {
    const child = this.#postmaster
    if (running(child)) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGINT') // fast shutdown
      await exited
    }
    await rm(this.dir, { recursive: true, force: true })
  }

  #spawn(): ChildProcess {
    const child = spawn(
      join(BIN, 'postgres'),
      [
        '-D',
        join(this.dir, 'data'),
        '-p',
        String(this.port),
        '-k',
        this.dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'max_connections=30',
        '-c',
        'shared_buffers=16MB',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], ...this.#ids },
    )
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#log = (this.#log + chunk.toString()).slice(-20_000)
    })
    this.#postmaster = child
    return child
  }

  /** Polls until `child` accepts connections (true), exits or the deadline passes (false). */
  async #ready(child: ChildProcess, deadline: number): Promise<boolean> {
    const pidFile = join(this.dir, 'data', 'postmaster.pid')
    while (running(child) && Date.now() < deadline) {
      // a killed server leaves its own pid file behind: only `child`'s counts. Its last line
      // says "ready" once the server accepts connections.
      const lines = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n') : []
      if (Number(lines[0]) === child.pid && lines.some((l) => l.trim() === 'ready')) return true
      await sleep(50)
    }
    return false
  }
}
