import type { SingleClient } from '@actor-cache/redis'
import { createClient } from 'redis'
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

export const progress = (what: string) => (r: number, total: number) =>
  process.stderr.write(`\r  ${what}: round ${r}/${total}`)

/** A node-redis client at `url`, or an error saying what to start. */
export async function connectRedis(url: string): Promise<SingleClient> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2000 } })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `the tiered benchmark needs Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as unknown as SingleClient
}
