/**
 * Change streams (`@actor-cache/state-tracker`): end-to-end latency from a write to a subscriber,
 * beside raw Redis Streams (XADD on one connection, a blocked XREAD on another, a payload the size
 * of a change record's JSON). Writes are `trackChange` calls into PostgreSQL (a schema of its
 * own); the latency runs from just before the call to the subscriber's receipt, and "after
 * commit" from the call's resolve. Paths: a relay (`createChangeRelay`) publishing the log to a
 * Redis change transport, read by a `createChangeStream({ log, transport })` subscriber, by a
 * `tracker.changeStream({ transport })` subscriber (the tracker wakes the relay) and by a
 * subscriber in a second process; and embedded mode (`tracker.changeStream()`, no transport).
 * Every path runs one write at a time (steady) and with 8 writers in flight (loaded), in rounds
 * that rotate the order of the paths.
 */
import { grid } from './harness.js'
import { figures, now, type Path, RAW, run, type Sample } from './streams-paths.js'
import { openStreamsStack } from './streams-stack.js'

/** Options of the streams suite. */
export interface StreamsSuiteOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string
  /** @default process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' */
  databaseUrl?: string
  /** Rounds; each runs every path once per load, in a rotated order. @default 3 */
  rounds?: number
  /** Samples per path per round at one write in flight. @default 60 */
  steady?: number
  /** Writers in flight in the loaded runs. @default 8 */
  writers?: number
  /** Samples per writer per path per round in the loaded runs. @default 8 */
  loaded?: number
  /** Shards of the change transport. @default 4 */
  shards?: number
  /** Also run a subscriber in a second process. @default true */
  childProcess?: boolean
  log?: (line: string) => void
}

/** Latency figures of one path at one load (ms). */
export interface StreamLatency {
  path: string
  load: 'steady' | 'loaded'
  samples: number
  p50: number
  p90: number
  p99: number
  max: number
  /** From the write's resolve (after commit) to the receipt. */
  commitP50: number
  commitP99: number
}

/** Latency from a write to a subscriber: raw Redis Streams, the relay paths, embedded mode. */
export async function runStreamsSuite(options: StreamsSuiteOptions = {}): Promise<StreamLatency[]> {
  const log = options.log ?? console.log
  const rounds = options.rounds ?? 3
  const steady = options.steady ?? 60
  const writers = options.writers ?? 8
  const loaded = options.loaded ?? 8
  const started = now()
  const stack = await openStreamsStack({
    redisUrl: options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    databaseUrl:
      options.databaseUrl ??
      process.env.DATABASE_URL ??
      'postgresql://postgres@127.0.0.1:5432/test',
    writers,
    shards: options.shards ?? 4,
    childProcess: options.childProcess ?? true,
  })
  try {
    const { paths, arrivals, relay } = stack
    // warm-up: every path, both loads (also creates the entities)
    for (const path of paths) {
      await run(path, arrivals, 1, 20)
      await run(path, arrivals, writers, 3)
    }
    const samples = new Map<string, Sample[]>()
    const add = (key: string, got: Sample[]) =>
      samples.set(key, [...(samples.get(key) ?? []), ...got])
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < paths.length; j++) {
        const path = paths[(j + r) % paths.length] as Path
        add(`${path.name}\u0000steady`, await run(path, arrivals, 1, steady))
        add(`${path.name}\u0000loaded`, await run(path, arrivals, writers, loaded))
      }
      process.stderr.write(
        `streams: round ${r + 1}/${rounds} at ${((now() - started) / 1000).toFixed(1)} s\n`,
      )
    }
    const results: StreamLatency[] = []
    for (const load of ['steady', 'loaded'] as const) {
      for (const path of paths) {
        results.push(figures(path.name, load, samples.get(`${path.name}\u0000${load}`) ?? []))
      }
    }
    const relayStats = relay.stats()
    log(
      report(results, {
        recordBytes: stack.recordBytes,
        writers,
        rounds,
        relay: `relay: ${relayStats.role}, ${relayStats.published} records published, ${relayStats.errors} errors`,
      }),
    )
    return results
  } finally {
    await stack.close()
  }
}

function report(
  results: readonly StreamLatency[],
  info: { recordBytes: number; writers: number; rounds: number; relay: string },
): string {
  const ms = (v: number) => v.toFixed(2)
  const lines = [
    `\n## Change streams: latency from a write to a subscriber (ms)\n`,
    `Raw: XADD of a ${info.recordBytes}-byte change-record JSON on one node-redis 6 connection, read by a blocked XREAD on another. The other paths write with \`trackChange\` into PostgreSQL; "total" runs from just before the call, "after commit" from its resolve. Steady: one write at a time; loaded: ${info.writers} writers in flight, each waiting for its change to arrive. ${info.rounds} rounds, paths in rotated order; ${info.relay}.\n`,
    `Target: none named; p50 and p99 are reported beside raw XADD → XREAD (ratios are total against raw total at the same load).\n`,
    `A \`trackChange\` wakes the relay only through a stream of its own tracker (\`tracker.changeStream({ transport })\`): the writer of the \`createChangeStream\` path has none, so its changes wait for the relay's next poll (\`pollInterval\`, 50 ms).\n`,
  ]
  for (const load of ['steady', 'loaded'] as const) {
    const rows = results.filter((r) => r.load === load)
    const base = rows.find((r) => r.path === RAW)
    lines.push(
      `\n### ${load === 'steady' ? 'Steady: 1 write in flight' : `Loaded: ${info.writers} writers in flight`}\n`,
    )
    lines.push(
      grid(
        [
          'path',
          'n',
          'p50',
          'p90',
          'p99',
          'max',
          'p50 after commit',
          'p99 after commit',
          'p50 vs raw',
          'p99 vs raw',
        ],
        rows.map((r) => [
          r.path,
          String(r.samples),
          ms(r.p50),
          ms(r.p90),
          ms(r.p99),
          ms(r.max),
          ms(r.commitP50),
          ms(r.commitP99),
          base ? `${(r.p50 / base.p50).toFixed(1)}x` : '',
          base ? `${(r.p99 / base.p99).toFixed(1)}x` : '',
        ]),
      ),
    )
  }
  return lines.join('\n')
}
