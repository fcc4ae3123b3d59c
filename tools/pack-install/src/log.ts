/** Progress lines, each with the time the step took. */
export function step(title: string): { done(detail?: string): number } {
  const started = performance.now()
  console.log(`${title}…`)
  return {
    done(detail) {
      const ms = performance.now() - started
      console.log(`  ${detail ? `${detail} ` : ''}(${seconds(ms)})`)
      return ms
    },
  }
}

/** `1.2s` */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`
}
