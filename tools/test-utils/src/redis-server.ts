/**
 * A private redis-server the fault tests can pause (SIGSTOP), kill and restart on the same port,
 * on a free port of its own: never the shared server's configuration.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'

/** Polls `check` every 20 ms until it holds; fails after `ms` (a bound on a hang, not a timing). */
async function eventually(
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
