/**
 * SQL fragments of `ac_cache_entries` that decide which rows are live and which version a write
 * must beat: expired rows count as absent (version 0), a tombstone keeps its version. `$n` is the
 * parameter holding the current time.
 */

/** `NOT deleted AND (expires_at IS NULL OR expires_at > $n)` */
export function live(n: number): string {
  return `(NOT deleted AND (expires_at IS NULL OR expires_at > $${n}))`
}

/** The version of row `t` that orders writes: 0 once expired; a tombstone keeps its version. */
export function floor(t: string, now: number): string {
  return `(CASE WHEN ${t}.expires_at IS NOT NULL AND ${t}.expires_at <= $${now} THEN 0 ELSE ${t}.version END)`
}

/** The lowest explicit version that may replace row `t` (a tombstone wins a tie). */
export function bar(t: string, now: number): string {
  return `(CASE WHEN ${t}.expires_at IS NOT NULL AND ${t}.expires_at <= $${now} THEN 0 WHEN ${t}.deleted THEN ${t}.version + 1 ELSE ${t}.version END)`
}
