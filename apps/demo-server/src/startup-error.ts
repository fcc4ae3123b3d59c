/**
 * A start-up failure told as what went wrong and how to fix it, e.g. "PostgreSQL at
 * 127.0.0.1:5432 is unreachable" / "start PostgreSQL, or unset DATABASE_URL to use the embedded
 * database". The original error is its `cause`.
 */
export class StartupError extends Error {
  readonly problem: string
  readonly fix: string
  constructor(problem: string, fix: string, cause?: unknown) {
    super(`${problem}\n  how to fix: ${fix}`, cause === undefined ? undefined : { cause })
    this.name = 'StartupError'
    this.problem = problem
    this.fix = fix
  }
}

/** The first line of an error's message (driver messages can be long). */
export function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0] ?? message
}

/** Runs one step of the start-up; its failure becomes a {@link StartupError}. */
export async function step<T>(
  problem: (error: unknown) => string,
  fix: string,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn()
  } catch (error) {
    if (error instanceof StartupError) throw error
    throw new StartupError(problem(error), fix, error)
  }
}

/** `url` without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '(a connection string that is not a URL)'
  }
}
