/**
 * Servers the fault tests can break: a private redis-server on a random port (killed, stopped with
 * SIGSTOP, resumed) and a TCP proxy in front of PostgreSQL that cuts every connection.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { eventually } from './helpers.js'

/** A free loopback port. */
export async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  const port = (probe.address() as { port: number }).port
  await new Promise((r) => probe.close(r))
  return port
}

/** A private redis-server the test can kill, stop (SIGSTOP) and resume. */
export interface PrivateRedis {
  readonly url: string
  start(): Promise<void>
  kill(): void
  /** SIGSTOP: the server takes connections' bytes but answers nothing. */
  pause(): void
  resume(): void
}

export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  return {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      )
      child.on('error', () => {})
      await eventually(
        () =>
          new Promise<boolean>((resolve) => {
            const s = createConnection(port, '127.0.0.1')
            s.on('connect', () => {
              s.destroy()
              resolve(true)
            })
            s.on('error', () => resolve(false))
          }),
        10_000,
        'redis-server to start (is redis-server installed?)',
      )
    },
    kill() {
      child?.kill('SIGCONT')
      child?.kill('SIGKILL')
    },
    pause() {
      child?.kill('SIGSTOP')
    },
    resume() {
      child?.kill('SIGCONT')
    },
  }
}

/** A TCP proxy that can refuse and drop every connection, like a network partition. */
export class TcpProxy {
  #server: Server | undefined
  readonly #sockets = new Set<Socket>()
  #blocked = false
  port = 0
  constructor(
    readonly host: string,
    readonly target: number,
  ) {}
  async start(): Promise<void> {
    this.#server = createServer((client) => {
      if (this.#blocked) {
        client.destroy()
        return
      }
      const upstream = createConnection(this.target, this.host)
      for (const s of [client, upstream]) {
        this.#sockets.add(s)
        s.on('close', () => this.#sockets.delete(s))
        s.on('error', () => {})
      }
      client.pipe(upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    const server = this.#server
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    this.port = (server.address() as { port: number }).port
  }
  block(): void {
    this.#blocked = true
    for (const s of this.#sockets) s.destroy()
  }
  unblock(): void {
    this.#blocked = false
  }
  async close(): Promise<void> {
    this.block()
    await new Promise((r) => this.#server?.close(r))
  }
}
