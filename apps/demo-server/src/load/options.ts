import { parseArgs } from 'node:util'
import { DEFAULT_MIX, type Mix, parseMix } from './workload.js'

/** Options of a load run (`pnpm demo:load --help`). */
export interface LoadOptions {
  /** The demo server. @default http://127.0.0.1:3000 */
  url: string
  /** Length of each run (caching on, caching off), in ms. @default 20 s */
  durationMs: number
  /** Requests in flight at once. @default 32 */
  concurrency: number
  mix: Mix
  /** Actors `1` ... `actors` to sample over. @default the number the server seeded */
  actors?: number
  /** Zipf exponent over actors. @default 1 */
  zipf: number
  /** Seed of the workload's random numbers. @default 42 */
  seed: number
  /** Which run goes first. @default cached-first */
  order: 'cached-first' | 'uncached-first'
  /** Bearer tokens of the roles the workload uses. @default the shipped configuration's */
  tokens: { player: string; gm: string; admin: string }
}

export const USAGE = `pnpm demo:load [options]   (the server must be running: pnpm demo)

  --url URL            the demo server (LOAD_URL)                        default http://127.0.0.1:3000
  --duration TIME      length of each run: 20s, 1m, 500ms (LOAD_DURATION)  default 20s
  --concurrency N      requests in flight at once (LOAD_CONCURRENCY)     default 32
  --mix WEIGHTS        reads=90,updates=5,equipment=5,config=0.01 (LOAD_MIX)
  --actors N           actors 1..N to sample over (LOAD_ACTORS)          default: as many as the server seeded
  --zipf S             Zipf exponent over actors (LOAD_ZIPF)             default 1
  --seed N             seed of the workload                              default 42
  --order ORDER        cached-first or uncached-first                    default cached-first
  tokens: LOAD_PLAYER_TOKEN, LOAD_GM_TOKEN, LOAD_ADMIN_TOKEN (default: the shipped demo tokens)`

/** `20s`, `1.5m`, `500ms`, or a number of seconds, in ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim())
  if (m === null)
    throw new RangeError(`--duration: expected a time like 20s, 1m or 500ms, got "${text}"`)
  const n = Number(m[1])
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000
  if (ms < 100) throw new RangeError(`--duration: at least 100ms, got "${text}"`)
  return ms
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`--${name}: expected a whole number from ${min} to ${max}, got "${text}"`)
  }
  return n
}

/**
 * The options from the command line, then the environment (`LOAD_*`), then the defaults.
 * @throws {RangeError} naming the option and the value
 */
export function parseLoadOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): LoadOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      duration: { type: 'string' },
      concurrency: { type: 'string' },
      mix: { type: 'string' },
      actors: { type: 'string' },
      zipf: { type: 'string' },
      seed: { type: 'string' },
      order: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help === true) return 'help'
  const pick = (flag: string | undefined, name: string): string | undefined =>
    flag ?? (env[name] === '' ? undefined : env[name])
  const actors = pick(values.actors, 'LOAD_ACTORS')
  const zipf = Number(pick(values.zipf, 'LOAD_ZIPF') ?? '1')
  if (!Number.isFinite(zipf) || zipf < 0 || zipf > 5)
    throw new RangeError(`--zipf: expected 0 to 5, got "${zipf}"`)
  const order = values.order ?? 'cached-first'
  if (order !== 'cached-first' && order !== 'uncached-first') {
    throw new RangeError(`--order: cached-first or uncached-first, got "${order}"`)
  }
  const mix = pick(values.mix, 'LOAD_MIX')
  return {
    url: pick(values.url, 'LOAD_URL') ?? 'http://127.0.0.1:3000',
    durationMs: parseDuration(pick(values.duration, 'LOAD_DURATION') ?? '20s'),
    concurrency: integer(
      'concurrency',
      pick(values.concurrency, 'LOAD_CONCURRENCY') ?? '32',
      1,
      1024,
    ),
    mix: mix === undefined ? { ...DEFAULT_MIX } : parseMix(mix),
    ...(actors === undefined ? {} : { actors: integer('actors', actors, 1, 1_000_000) }),
    zipf,
    seed: integer('seed', values.seed ?? '42', 0, 2 ** 32 - 1),
    order,
    tokens: {
      player: env.LOAD_PLAYER_TOKEN || 'demo-player-token',
      gm: env.LOAD_GM_TOKEN || 'demo-gm-token',
      admin: env.LOAD_ADMIN_TOKEN || 'demo-admin-token',
    },
  }
}
