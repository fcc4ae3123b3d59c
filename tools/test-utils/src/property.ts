/**
 * Property runs that can be replayed and made long:
 * - `LONG_RUNS=<factor>` (`pnpm test:long` sets 20) multiplies the runs of every property;
 * - `FC_SEED=<n> FC_PATH=<path>` replays one failure exactly as its report printed it.
 * A failure prints fast-check's whole report (seed, path, the shrunk command sequence in full)
 * to stderr before failing the test, so a CI log is enough to replay it.
 */
import fc from 'fast-check'

/** The factor `LONG_RUNS` asks for (1 when unset). */
export const LONG = Math.max(1, Number(process.env.LONG_RUNS ?? 1) || 1)

/** A test timeout scaled with {@link LONG}. */
export const longTimeout = (ms: number): number => ms * LONG

export async function assertReplayable<T>(
  property: fc.IAsyncPropertyWithHooks<T>,
  numRuns: number,
): Promise<void> {
  const seed = process.env.FC_SEED
  const path = process.env.FC_PATH
  const params: fc.Parameters<T> = {
    numRuns: numRuns * LONG,
    ...(seed === undefined ? {} : { seed: Number(seed) }),
    ...(path === undefined ? {} : { path, endOnFailure: true }),
  }
  const details = await fc.check(property, params)
  if (!details.failed) return
  const report = fc.defaultReportMessage(details) ?? 'property failed'
  process.stderr.write(
    `\n${report}\nreplay: FC_SEED=${details.seed} FC_PATH="${details.counterexamplePath}"\n`,
  )
  throw new Error(report)
}
