import type { actorState } from './workload.js'

/** An actor's state as the workloads store it. */
export type State = ReturnType<typeof actorState>

export const TTL = 300_000
export const NS = 'primary_core'

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export const quantile = (sorted: Float64Array, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number

export const int = (n: number): string => Math.round(n).toLocaleString('en-US')
export const pct = (f: number): string => `${(f * 100).toFixed(1)}%`

export const progress = (what: string) => (r: number, total: number) =>
  process.stderr.write(`\r  ${what}: round ${r}/${total}`)
