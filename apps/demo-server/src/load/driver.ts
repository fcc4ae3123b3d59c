import type { HttpClient } from './http-client.js'
import { LatencyRecorder, type LatencySummary } from './latency.js'
import type { Operation, OperationKind, Role, Workload } from './workload.js'

/** How the requests of a run ended. */
export interface Outcomes {
  /** 2xx. */
  ok: number
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
  /** The first few unexpected answers, for the report. */
  sampleErrors: string[]
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
  const outcomes: Outcomes = { ok: 0, notFound: 0, conflicts: 0, rateLimited: 0, errors: 0 }
  const byKind: Record<OperationKind, number> = { reads: 0, updates: 0, equipment: 0, config: 0 }
  const sampleErrors: string[] = []
  const started = performance.now()
  const deadline = started + options.durationMs
  let requests = 0

  const one = async (op: Operation): Promise<void> => {
    const t0 = performance.now()
    const res = await options.client.send(op.method, op.path, options.tokens[op.role], op.body)
    if (res.status !== 0) latency.record(performance.now() - t0)
    requests++
    byKind[op.kind]++
    const outcome = outcomeOf(res.status)
    outcomes[outcome]++
    if (outcome === 'errors' && sampleErrors.length < 5) {
      const what = res.error?.message ?? `${res.status} ${res.body.slice(0, 160)}`
      sampleErrors.push(`${op.method} ${op.path}: ${what}`)
    }
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
