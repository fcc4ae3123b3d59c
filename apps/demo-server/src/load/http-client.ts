import { Agent, request } from 'node:http'

/** A response: status and body text; `status` 0 when the request failed without one. */
export interface HttpResult {
  status: number
  body: string
  /** Its `ETag` and `x-cache` (the demo server's response cache: hit, miss or bypass). */
  etag?: string
  cache?: string
  /** The network error, when there was no response. */
  error?: Error
}

/** Keep-alive HTTP/1.1 to one server, at most `sockets` requests in flight. */
export interface HttpClient {
  send(
    method: string,
    path: string,
    token: string | undefined,
    body?: object,
    /** Extra request headers (`if-none-match`). */
    extra?: Readonly<Record<string, string>>,
  ): Promise<HttpResult>
  close(): void
}

/**
 * An HTTP client over `node:http` with a keep-alive agent: lighter than `fetch` per request, so
 * the load generator's own cost stays small beside the server's (both may share a machine).
 */
export function createHttpClient(baseUrl: string, sockets: number, timeoutMs = 30_000): HttpClient {
  const base = new URL(baseUrl)
  if (base.protocol !== 'http:') {
    throw new RangeError(`--url must be an http:// URL, got ${JSON.stringify(baseUrl)}`)
  }
  const agent = new Agent({ keepAlive: true, maxSockets: sockets })
  return {
    send(method, path, token, body, extra) {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const headers: Record<string, string> = { ...extra }
      if (token !== undefined) headers.authorization = `Bearer ${token}`
      if (payload !== undefined) {
        headers['content-type'] = 'application/json'
        headers['content-length'] = String(Buffer.byteLength(payload))
      }
      return new Promise((resolve) => {
        const req = request(
          {
            host: base.hostname,
            port: base.port || 80,
            method,
            path,
            headers,
            agent,
            timeout: timeoutMs,
          },
          (res) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => {
              const { etag, 'x-cache': cache } = res.headers
              resolve({
                status: res.statusCode ?? 0,
                body: Buffer.concat(chunks).toString('utf8'),
                ...(etag === undefined ? {} : { etag }),
                ...(typeof cache === 'string' ? { cache } : {}),
              })
            })
            res.on('error', (error) => resolve({ status: 0, body: '', error }))
          },
        )
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
        req.on('error', (error) => resolve({ status: 0, body: '', error }))
        req.end(payload)
      })
    },
    close() {
      agent.destroy()
    },
  }
}
