/**
 * Servers the fault tests can break: a private redis-server (killed, restarted on the same port,
 * stopped with SIGSTOP and resumed; shared with the other packages' fault tests) and a TCP proxy
 * that cuts every connection to PostgreSQL.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'

export { privateRedis, type RedisServer } from '@actor-cache/test-utils/redis-server'

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
