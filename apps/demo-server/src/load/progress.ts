import type { DriveProgress } from './driver.js'

/** Where the load generator writes: its progress and its report. */
export interface Output {
  /** A whole line. */
  line(text: string): void
  /** Rewrites the current line (a terminal); undefined when the output is not one. */
  status?: (text: string) => void
}

/** The output of a terminal's stdout: progress redrawn in place. Otherwise lines only. */
export function consoleOutput(stream: NodeJS.WriteStream = process.stdout): Output {
  const line = (text: string): void => {
    stream.write(`${text}\n`)
  }
  if (!stream.isTTY) return { line }
  return {
    line,
    status: (text) => stream.write(`\r${text.slice(0, (stream.columns ?? 100) - 1)}\x1b[K`),
  }
}

/** `████░░░░` for a fraction in [0, 1]. */
export function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width)
  return '█'.repeat(full) + '░'.repeat(width - full)
}

/**
 * Shows a run's progress until stopped: redrawn every `everyMs` on a terminal, a line every
 * `lineEveryMs` otherwise (logs stay short).
 */
export function showProgress(
  output: Output,
  label: string,
  durationMs: number,
  read: () => DriveProgress,
  timing: { everyMs: number; lineEveryMs: number } = { everyMs: 200, lineEveryMs: 5_000 },
): { stop(): void } {
  const render = (): string => {
    const p = read()
    const seconds = Math.max(p.elapsedMs, 1) / 1000
    const shown = Math.min(p.elapsedMs, durationMs) / 1000
    return (
      `  ${label} ${bar(p.elapsedMs / durationMs)} ${shown.toFixed(1)}/${(durationMs / 1000).toFixed(0)} s` +
      `  ${p.requests} requests  ${Math.round(p.requests / seconds)} req/s  ${p.errors} errors`
    )
  }
  const status = output.status
  let lastLine = 0
  const timer = setInterval(
    () => {
      if (status !== undefined) return status(render())
      const now = performance.now()
      // the last line is stop()'s
      if (now - lastLine >= timing.lineEveryMs && read().elapsedMs < durationMs) {
        lastLine = now
        output.line(render())
      }
    },
    status === undefined ? Math.min(timing.everyMs, timing.lineEveryMs) : timing.everyMs,
  )
  timer.unref()
  lastLine = performance.now()
  return {
    stop() {
      clearInterval(timer)
      if (status !== undefined) status(render())
      output.line(status === undefined ? render() : '')
    },
  }
}
