import type { HttpClient } from '../load/http-client.js'
import { LatencyRecorder, type LatencySummary } from '../load/latency.js'

/** Options of {@link measurePropagation}. */
export interface PropagationOptions {
  /** The two instances, in the order the first round writes and reads. */
  servers: readonly [HttpClient, HttpClient]
  /** A token that may read and write `primary_core` (a game master's). */
  token: string
  /** Actor ids written, in turn. */
  actors: readonly string[]
  /** Writes to make; each round alternates the writer (A then B). */
  rounds: number
  /** Longest wait for a write to show on the other instance (a bound on a hang). @default 10_000 */
  deadlineMs?: number
  /** Ends the measurement early. */
  signal?: AbortSignal
}

/** What {@link measurePropagation} measured. */
export interface PropagationReport {
  /** Writes acknowledged (200) whose visibility was measured. */
  writes: number
  /**
   * Milliseconds from the writer's acknowledgement to the end of the first read on the other
   * instance that answered the written version (or a newer one): an upper bound on the stale
   * window, as it includes that read's round trip.
   */
  visible: LatencySummary
  /** Reads on the other instance, after the acknowledgement, that answered an older version. */
  staleReads: number
  /** Writes for which at least one such stale read came back. */
  staleWrites: number
  /** Writes the other instance did not answer within the deadline. */
  notSeen: number
  /** Writes not acknowledged (no 200), left out of the figures. */
  failedWrites: number
}

interface Answer {
  status: number
  version: number | undefined
}

async function readVersion(client: HttpClient, token: string, id: string): Promise<Answer> {
  const res = await client.send('GET', `/actors/${id}`, token)
  if (res.status !== 200) return { status: res.status, version: undefined }
  return { status: 200, version: (JSON.parse(res.body) as { version: number }).version }
}

/**
 * Cross-instance staleness (R4 of the reliability table): each round reads an actor through the
 * reader (so its L1 holds a copy), writes the actor's hp through the other instance, then reads
 * through the reader until it answers the written version. Rounds run one at a time.
 */
export async function measurePropagation(options: PropagationOptions): Promise<PropagationReport> {
  const { servers, token, actors, rounds } = options
  const deadline = options.deadlineMs ?? 10_000
  const visible = new LatencyRecorder()
  let staleReads = 0
  let staleWrites = 0
  let notSeen = 0
  let failedWrites = 0
  for (let i = 0; i < rounds && options.signal?.aborted !== true; i++) {
    const writer = servers[i % 2] as HttpClient
    const reader = servers[(i + 1) % 2] as HttpClient
    const id = actors[i % actors.length] as string
    await readVersion(reader, token, id)
    const hp = 1000 + i
    const write = await writer.send('PATCH', `/actors/${id}`, token, { primaryCore: { hp } })
    if (write.status !== 200) {
      failedWrites++
      continue
    }
    const acked = performance.now()
    const { version } = JSON.parse(write.body) as { version: number }
    const staleBefore = staleReads
    for (;;) {
      const read = await readVersion(reader, token, id)
      const now = performance.now()
      if (read.version !== undefined && read.version >= version) {
        visible.record(now - acked)
        break
      }
      if (read.status === 200) staleReads++
      if (now - acked > deadline) {
        notSeen++
        break
      }
    }
    if (staleReads > staleBefore) staleWrites++
  }
  return {
    writes: visible.count,
    visible: visible.summary(),
    staleReads,
    staleWrites,
    notSeen,
    failedWrites,
  }
}

/** The report in a few lines, for people. */
export function formatPropagation(report: PropagationReport): string[] {
  const ms = (v: number): string => `${v.toFixed(1)} ms`
  const { visible } = report
  return [
    `write on one instance visible on the other (${report.writes} writes, alternating A→B and B→A):`,
    `  p50 ${ms(visible.p50)}   p99 ${ms(visible.p99)}   max ${ms(visible.max)}   mean ${ms(visible.mean)}`,
    `  writes read stale after their acknowledgement: ${report.staleWrites} (${report.staleReads} stale reads); not visible within the deadline: ${report.notSeen}; not acknowledged: ${report.failedWrites}`,
  ]
}
