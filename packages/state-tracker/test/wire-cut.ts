/**
 * A TCP proxy in front of PostgreSQL that can lose a reply: once armed, it drops the connection
 * when the server's ReadyForQuery message (sent after the statement and its implicit COMMIT)
 * would reach the client, so the statement has committed and the client never learns it.
 */
import { once } from 'node:events'
import { createConnection, createServer, type Server, type Socket } from 'node:net'

export interface WireCut {
  /** `host:port` of the proxy. */
  address: string
  /** The next ReadyForQuery from the server is not delivered: the connection is cut instead. */
  arm(): void
  /** Resolves when an armed cut happened. */
  cut(): Promise<void>
  close(): Promise<void>
}

/**
 * Reads the server's message stream (type byte, then a 4-byte length that counts itself) across
 * chunks, and tells whether a chunk holds a ReadyForQuery ('Z') message.
 */
function messageScanner(): (chunk: Buffer) => boolean {
  let pending = Buffer.alloc(0)
  let skip = 0
  return (chunk) => {
    let found = false
    let buf = Buffer.concat([pending, chunk])
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length)
        skip -= n
        buf = buf.subarray(n)
      }
      if (skip > 0 || buf.length < 5) break
      if (buf[0] === 0x5a) found = true
      skip = 1 + buf.readInt32BE(1)
    }
    pending = Buffer.from(buf)
    return found
  }
}

export async function startWireCut(target: { host: string; port: number }): Promise<WireCut> {
  let armed = false
  let onCut: (() => void) | undefined
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = createConnection(target)
    const readyForQuery = messageScanner()
    sockets.add(client).add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (d) => upstream.write(d))
    upstream.on('data', (d: Buffer) => {
      const ready = readyForQuery(d)
      if (armed && ready) {
        armed = false
        drop()
        onCut?.()
        return
      }
      client.write(d)
    })
    for (const s of [client, upstream]) {
      s.on('error', drop)
      s.on('close', () => {
        sockets.delete(s)
        drop()
      })
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  return {
    address: `127.0.0.1:${port}`,
    arm() {
      armed = true
    },
    cut: () =>
      new Promise<void>((resolve) => {
        onCut = resolve
      }),
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
