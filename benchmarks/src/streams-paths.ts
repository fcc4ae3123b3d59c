/**
 * The ways from a write to a subscriber that the streams benchmark times: raw Redis Streams and
 * `trackChange` paths, the receipts they report, and the latency figures of a run.
 */
import { performance } from 'node:perf_hooks'
import type { AnyRedisClient } from '@actor-cache/redis'
import type { ChangeSubscription, StateTracker } from '@actor-cache/state-tracker'
import type { StreamLatency } from './streams.js'

export const RAW = 'raw Redis Streams XADD → XREAD'
/** Longest wait for one change to arrive before the run fails (ms). */
const ARRIVAL_TIMEOUT = 15_000

/** A high-resolution wall clock (ms) that two processes of one machine share. */
export const now = (): number => performance.timeOrigin + performance.now()

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number

/** Waits for the receipt of each numbered write. */
export class Arrivals {
  readonly #waiting = new Map<number, (at: number) => void>()
  readonly #early = new Map<number, number>()

  /** Resolves with the receipt time of write `i` (its receipt may come before the call). */
  expect(i: number): Promise<number> {
    const early = this.#early.get(i)
    if (early !== undefined) {
      this.#early.delete(i)
      return Promise.resolve(early)
    }
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(i)
        reject(new Error(`change ${i} did not arrive within ${ARRIVAL_TIMEOUT} ms`))
      }, ARRIVAL_TIMEOUT)
      this.#waiting.set(i, (at) => {
        clearTimeout(timer)
        resolve(at)
      })
    })
  }

  arrived(i: number, at: number): void {
    const wake = this.#waiting.get(i)
    if (wake === undefined) {
      this.#early.set(i, at)
      return
    }
    this.#waiting.delete(i)
    wake(at)
  }
}

/** One way from a write to a subscriber. */
export interface Path {
  name: string
  /** Writes change `i` from writer `lane`; resolves once it is committed. */
  write(lane: number, i: number): Promise<unknown>
}

export interface Sample {
  total: number
  afterCommit: number
}

let sequence = 0

/** `perLane` writes on each of `lanes` writers, each waiting for its receipt before the next. */
export async function run(
  path: Path,
  arrivals: Arrivals,
  lanes: number,
  perLane: number,
): Promise<Sample[]> {
  const out: Sample[] = []
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let k = 0; k < perLane; k++) {
        const i = ++sequence
        const arrived = arrivals.expect(i)
        const t0 = now()
        await path.write(lane, i)
        const committed = now()
        const at = await arrived
        out.push({ total: at - t0, afterCommit: at - committed })
      }
    }),
  )
  return out
}

export function figures(
  path: string,
  load: StreamLatency['load'],
  samples: Sample[],
): StreamLatency {
  const total = samples.map((s) => s.total).sort((a, b) => a - b)
  const commit = samples.map((s) => s.afterCommit).sort((a, b) => a - b)
  return {
    path,
    load,
    samples: samples.length,
    p50: quantile(total, 0.5),
    p90: quantile(total, 0.9),
    p99: quantile(total, 0.99),
    max: total.at(-1) as number,
    commitP50: quantile(commit, 0.5),
    commitP99: quantile(commit, 0.99),
  }
}

/** Raw Redis Streams: XADD on `writer`, a blocked XREAD loop on `reader`. */
export function rawPath(
  writer: AnyRedisClient,
  reader: AnyRedisClient,
  key: string,
  payload: (i: number) => string,
  arrivals: Arrivals,
): { path: Path; stop(): Promise<void> } {
  type Entry = [string, string[]]
  let stopped = false
  const send = (client: AnyRedisClient, args: string[]) =>
    (client as unknown as { sendCommand(a: string[]): Promise<unknown> }).sendCommand(args)
  const loop: Promise<void> = (async () => {
    // from the start of this run's (new) stream: with '$', an entry added between two blocked
    // reads would be skipped
    let last = '0-0'
    while (!stopped) {
      const reply = (await send(reader, [
        'XREAD',
        'BLOCK',
        '100',
        'COUNT',
        '100',
        'STREAMS',
        key,
        last,
      ])) as [string, Entry[]][] | Map<string, Entry[]> | Record<string, Entry[]> | null
      const at = now()
      // RESP3 (node-redis 6's default) answers a map of streams, RESP2 a list of pairs
      const streams: Entry[][] =
        reply === null
          ? []
          : Array.isArray(reply)
            ? reply.map(([, entries]) => entries)
            : reply instanceof Map
              ? [...reply.values()]
              : Object.values(reply)
      for (const entries of streams) {
        for (const [id, fields] of entries) {
          last = id
          const record = JSON.parse(fields[1] as string) as { newValue: { i: number } }
          arrivals.arrived(record.newValue.i, at)
        }
      }
    }
  })()
  // a failed read fails the run through the arrivals it never reports (and is not unhandled)
  loop.catch((error: unknown) => process.stderr.write(`raw XREAD loop: ${String(error)}\n`))
  return {
    path: { name: RAW, write: (_lane, i) => send(writer, ['XADD', key, '*', 'c', payload(i)]) },
    async stop() {
      stopped = true
      await loop.catch(() => {})
    },
  }
}

/** Feeds every record a subscription delivers into `arrivals` until it ends. */
export function consume(sub: ChangeSubscription, arrivals: Arrivals): Promise<void> {
  return (async () => {
    for await (const r of sub) arrivals.arrived((r.newValue as { i: number }).i, now())
  })()
}

/** `trackChange` of entity `<lane>` of `type`: a create first, updates after. */
export function trackerPath(
  name: string,
  tracker: StateTracker,
  type: string,
  payload: (i: number) => unknown,
): Path {
  const created = new Set<number>()
  return {
    name,
    write(lane, i) {
      const first = !created.has(lane)
      created.add(lane)
      return tracker.trackChange({
        entityType: type,
        entityId: `actor:${lane}`,
        changeType: first ? 'create' : 'update',
        newValue: payload(i),
        userId: 'user:bench',
      })
    },
  }
}
