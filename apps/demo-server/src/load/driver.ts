import type { HttpClient, HttpResult } from './http-client.js'
import { LatencyRecorder, type LatencySummary } from './latency.js'
import type { Operation, OperationKind, Role, Workload } from './workload.js'

/** How the requests of a run ended. */
export interface Outcomes {
  /** 2xx. */
  ok: number
  /** 304: a read whose `If-None-Match` had the current ETag (no body sent). */
  notModified: number
  /** 404: an actor deleted since seeding. */
  notFound: number
  /** 409: a concurrent write of the same actor won (stat updates are compare-and-set). */
  conflicts: number
  /** 429: the server's rate limit (per principal and namespace). */
  rateLimited: number
  /** Other statuses, and requests without a response. */
  errors: number
}

/** What a run's clients saw. */
export interface DriveResult {
  durationMs: number
  requests: number
  /** Requests per second. */
  throughput: number
  latency: LatencySummary
  outcomes: Outcomes
  /** Requests per kind of operation. */
  byKind: Record<OperationKind, number>
  /** Reads by the server's `x-cache`: from the response cache, loaded, or caching off. */
  responseCache: ResponseCacheCounts
  /** The first few unexpected answers, for the report. */
  sampleErrors: string[]
}

/** Reads by where the server's response came from (its `x-cache` header). */
export interface ResponseCacheCounts {
  hits: number
  misses: number
  bypassed: number
}

/** Live counts, for the progress bar. */
export interface DriveProgress {
  elapsedMs: number
  requests: number
  errors: number
}

/** Options of {@link drive}. */
export interface DriveOptions {
  client: HttpClient
  workload: Workload
  tokens: Record<Role, string>
  /** Requests in flight at once (each worker sends its next when its last answered). */
  concurrency: number
  durationMs: number
  /** Stops early when aborted (Ctrl+C). */
  signal?: AbortSignal
}

function outcomeOf(status: number): keyof Outcomes {
  if (status >= 200 && status < 300) return 'ok'
  if (status === 304) return 'notModified'
  if (status === 404) return 'notFound'
  if (status === 409) return 'conflicts'
  if (status === 429) return 'rateLimited'
  return 'errors'
}

/**
 * Runs the workload for `durationMs` with `concurrency` closed-loop workers, timing each request
 * from send to the end of its body. Returns what the clients saw; `progress()` reads the counts
 * while it runs.
 */
export function drive(options: DriveOptions): {
  done: Promise<DriveResult>
  progress(): DriveProgress
} {
  const latency = new LatencyRecorder()
  const outcomes: Outcomes = {
    ok: 0,
    notModified: 0,
    notFound: 0,
    conflicts: 0,
    rateLimited: 0,
    errors: 0,
  }
  const byKind: Record<OperationKind, number> = { reads: 0, updates: 0, equipment: 0, config: 0 }
  const responseCache: ResponseCacheCounts = { hits: 0, misses: 0, bypassed: 0 }
  // the players' copies: the ETag each read path last answered with, sent back in If-None-Match
  const etags = new Map<string, string>()
  const sampleErrors: string[] = []
  const started = performance.now()
  const deadline = started + options.durationMs
  let requests = 0

  const one = async (op: Operation): Promise<void> => {
    const seen = op.method === 'GET' ? etags.get(op.path) : undefined
    const extra = seen === undefined ? undefined : { 'if-none-match': seen }
    const t0 = performance.now()
    const token = options.tokens[op.role]
    const res = await options.client.send(op.method, op.path, token, op.body, extra)
    if (res.status !== 0) latency.record(performance.now() - t0)
    requests++
    byKind[op.kind]++
    if (op.method === 'GET') remember(op.path, res)
    const outcome = outcomeOf(res.status)
    outcomes[outcome]++
    if (outcome === 'errors' && sampleErrors.length < 5) {
      const what = res.error?.message ?? `${res.status} ${res.body.slice(0, 160)}`
      sampleErrors.push(`${op.method} ${op.path}: ${what}`)
    }
  }
  const remember = (path: string, res: HttpResult): void => {
    if (res.status === 200 && res.etag !== undefined) etags.set(path, res.etag)
    else if (res.status === 404) etags.delete(path)
    if (res.cache === 'hit') responseCache.hits++
    else if (res.cache === 'miss') responseCache.misses++
    else if (res.cache === 'bypass') responseCache.bypassed++
  }
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && options.signal?.aborted !== true) {
      await one(options.workload.next())
    }
  }
  const done = Promise.all(Array.from({ length: options.concurrency }, worker)).then(() => {
    const durationMs = performance.now() - started
    return {
      durationMs,
      requests,
      throughput: requests / (durationMs / 1000),
      latency: latency.summary(),
      outcomes,
      byKind,
      responseCache,
      sampleErrors,
    }
  })
  return {
    done,
    progress: () => ({
      elapsedMs: performance.now() - started,
      requests,
      errors: outcomes.errors,
    }),
  }
}
