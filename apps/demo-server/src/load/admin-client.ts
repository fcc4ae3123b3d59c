import type { HttpClient, HttpResult } from './http-client.js'
import type { LoadCounts } from './load-counters.js'

/** `GET /admin/load-stats`: the counters since the last reset, and what the server runs on. */
export interface ServerStats extends LoadCounts {
  caching: boolean
  hasL2: boolean
  actors: number
  l1Held: { entries: number; bytes: number }
}

/** The server cannot be used for a load run: the message says what to do. */
export class LoadSetupError extends Error {
  readonly code = 'E_LOAD_SETUP'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LoadSetupError'
  }
}

/** The admin routes the load generator drives: the caching switch and the counters. */
export interface AdminClient {
  /** Checks the server answers and the token is an admin's; its stats. */
  check(): Promise<ServerStats>
  setCaching(enabled: boolean): Promise<void>
  /** Zeroes the counters; `dropCaches`: every namespace invalidated first (a cold start). */
  reset(dropCaches: boolean): Promise<void>
  stats(): Promise<ServerStats>
}

/** The admin client over `client` with the admin's bearer `token`. */
export function createAdminClient(client: HttpClient, url: string, token: string): AdminClient {
  const call = async (method: string, path: string, body?: object): Promise<HttpResult> => {
    const res = await client.send(method, path, token, body)
    if (res.status === 0) {
      throw new LoadSetupError(
        `no demo server answers at ${url} (${res.error?.message ?? 'no response'}): start it first with \`pnpm demo\`, or pass its address with --url`,
        { cause: res.error },
      )
    }
    if (res.status === 401 || res.status === 403) {
      throw new LoadSetupError(
        `the server at ${url} refused the admin token (${res.status}): set LOAD_ADMIN_TOKEN to a token of the admin role`,
      )
    }
    if (res.status === 404 && path.startsWith('/admin/')) {
      throw new LoadSetupError(
        `the server at ${url} has no ${path} route: is it the demo server, built from this version (pnpm build)?`,
      )
    }
    if (res.status < 200 || res.status >= 300) {
      throw new LoadSetupError(
        `${method} ${path} answered ${res.status}: ${res.body.slice(0, 300)}`,
      )
    }
    return res
  }
  const stats = async (): Promise<ServerStats> =>
    JSON.parse((await call('GET', '/admin/load-stats')).body) as ServerStats
  return {
    check: stats,
    async setCaching(enabled) {
      await call('PUT', '/admin/caching', { enabled })
    },
    async reset(dropCaches) {
      await call('POST', '/admin/load-stats/reset', { dropCaches })
    },
    stats,
  }
}
