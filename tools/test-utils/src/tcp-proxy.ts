import { createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy that can drop every connection, like a network partition: {@link TcpProxy.block}
 * accepts new connections only to close them, {@link TcpProxy.down} stops listening (connections
 * are refused, so a client never gets as far as writing anything) until {@link TcpProxy.unblock}.
 */
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
    const server = createServer((client) => {
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
    this.#server = server
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r))
    this.port = (server.address() as { port: number }).port
  }
  block(): void {
    this.#blocked = true
    for (const s of this.#sockets) s.destroy()
  }
  /** Drops every connection and stops listening: new ones are refused until {@link unblock}. */
  async down(): Promise<void> {
    this.block()
    const server = this.#server
    this.#server = undefined
    if (server) await new Promise((r) => server.close(r))
  }
  /** Lets connections through again (listening again on the same port after {@link down}). */
  async unblock(): Promise<void> {
    this.#blocked = false
    if (this.#server === undefined) await this.start()
  }
  async close(): Promise<void> {
    await this.down()
  }
}
