/**
 * A small side-by-side benchmark harness. Every case runs the same number of operations per
 * round; rounds are interleaved across cases (so drift on a noisy machine hits all of them) and
 * the median round is reported. Inputs are prepared by the caller, outside the timed region.
 */

/** One contender. `run(n)` performs `n` operations and returns something derived from them. */
export interface BenchCase {
  name: string
  run(n: number): unknown
}

/** Result of one case. */
export interface BenchResult {
  name: string
  /** Median nanoseconds per operation over the measured rounds. */
  nsPerOp: number
  /** 1e9 / nsPerOp. */
  opsPerSec: number
  /** Per-round ns/op, in run order. */
  samples: number[]
}

/** Options of {@link compare}. */
export interface CompareOptions {
  /** Operations per case per round. @default 200_000 */
  opsPerRound?: number
  /** Measured rounds. @default 9 */
  rounds?: number
  /** Unmeasured rounds first, to let the JIT settle. @default 3 */
  warmup?: number
  /** Called after each measured round (progress). */
  onRound?: (round: number, rounds: number) => void
}

let sink: unknown
/** Keeps results observable so the JIT cannot drop the work. */
export function consume(value: unknown): void {
  sink = value
}
/** @internal */
export const lastSink = (): unknown => sink

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Runs `cases` side by side and returns their median cost per operation. */
export async function compare(
  cases: readonly BenchCase[],
  options: CompareOptions = {},
): Promise<BenchResult[]> {
  const n = options.opsPerRound ?? 200_000
  const rounds = options.rounds ?? 9
  const warmup = options.warmup ?? 3
  const samples = cases.map(() => [] as number[])
  for (let r = 0; r < warmup + rounds; r++) {
    // rotate the starting case so no case always runs first after a pause
    for (let j = 0; j < cases.length; j++) {
      const i = (j + r) % cases.length
      const c = cases[i] as BenchCase
      const t0 = process.hrtime.bigint()
      const out = c.run(n)
      consume(out instanceof Promise ? await out : out)
      const ns = Number(process.hrtime.bigint() - t0) / n
      if (r >= warmup) (samples[i] as number[]).push(ns)
    }
    if (r >= warmup) options.onRound?.(r - warmup + 1, rounds)
  }
  return cases.map((c, i) => {
    const nsPerOp = median(samples[i] as number[])
    return { name: c.name, nsPerOp, opsPerSec: 1e9 / nsPerOp, samples: samples[i] as number[] }
  })
}

/**
 * A case that awaits `get(next())` `n` times, one at a time, and counts the defined results.
 * `next` yields the precomputed access sequence.
 */
export function awaitedCase<K>(
  name: string,
  next: () => K,
  get: (key: K) => Promise<unknown>,
): BenchCase {
  return {
    name,
    async run(n: number) {
      let hits = 0
      for (let i = 0; i < n; i++) if ((await get(next())) !== undefined) hits++
      return hits
    },
  }
}

/** Formats results as a table with each case's ratio to `baseline` (cost ratio: >1 is slower). */
export function table(results: readonly BenchResult[], baseline: string): string {
  const base = results.find((r) => r.name === baseline)
  const rows = results.map((r) => [
    r.name,
    r.nsPerOp.toFixed(1),
    Math.round(r.opsPerSec).toLocaleString('en-US'),
    base ? `${(r.nsPerOp / base.nsPerOp).toFixed(2)}x` : '',
  ])
  return grid(['case', 'ns/op (median)', 'ops/s', `cost vs ${baseline}`], rows)
}

/** A Markdown table; the first column is left-aligned, the others right-aligned. */
export function grid(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] as string).length)),
  )
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`
  return [
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n')
}
