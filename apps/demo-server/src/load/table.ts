/** A plain-text table with a header row, columns padded to their widest cell. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    `| ${widths.map((w, i) => (cells[i] ?? '').padEnd(w)).join(' | ')} |`
  const rule = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

/** `12.3%`; `n/a` for undefined. */
export const percent = (value: number | undefined, digits = 1): string =>
  value === undefined || !Number.isFinite(value) ? 'n/a' : `${(value * 100).toFixed(digits)}%`

/** `1.23 ms`. */
export const millis = (ms: number): string => `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`

/** `12.3 MB` (10⁶ bytes). */
export const megabytes = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`

/** `1,234`. */
export const count = (n: number): string => Math.round(n).toLocaleString('en-US')
