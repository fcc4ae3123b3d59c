import { type AdminClient, createAdminClient, LoadSetupError } from './admin-client.js'
import { drive } from './driver.js'
import { createHttpClient, type HttpClient } from './http-client.js'
import type { LoadOptions } from './options.js'
import { consoleOutput, type Output, showProgress } from './progress.js'
import { checkPromises, type RunReport, summarizeRun } from './promises.js'
import type { LoadReport } from './report.js'
import { createWorkload } from './workload.js'

/** One run with caching on or off, from a cold start (every cache dropped, counters zeroed). */
async function oneRun(
  caching: boolean,
  parts: { options: LoadOptions; actors: number; client: HttpClient; admin: AdminClient },
  output: Output,
  signal: AbortSignal | undefined,
): Promise<RunReport> {
  const { options, client, admin } = parts
  await admin.setCaching(caching)
  await admin.reset(true)
  // the same seed in both runs: both draw the same sequence of operations
  const workload = createWorkload({ ...options, actors: parts.actors })
  const run = drive({
    client,
    workload,
    tokens: options.tokens,
    concurrency: options.concurrency,
    durationMs: options.durationMs,
    ...(signal === undefined ? {} : { signal }),
  })
  const label = caching ? 'caching on ' : 'caching off'
  const progress = showProgress(output, label, options.durationMs, run.progress)
  let result: Awaited<typeof run.done>
  try {
    result = await run.done
  } finally {
    progress.stop()
  }
  return summarizeRun(caching, result, await admin.stats())
}

/**
 * Runs the game workload against a running demo server twice, with caching on and with caching
 * off (the server's switch: every read goes to the store of record), and checks the design
 * document's promises against what was measured. The server's switch is put back as it was.
 * @throws {LoadSetupError} when no demo server answers, or it cannot be driven (the message says
 *   what to do)
 */
export async function runLoad(
  options: LoadOptions,
  output: Output = consoleOutput(),
  signal?: AbortSignal,
): Promise<LoadReport> {
  const client = createHttpClient(options.url, options.concurrency + 2)
  try {
    const admin = createAdminClient(client, options.url, options.tokens.admin)
    const info = await admin.check()
    const actors = options.actors ?? info.actors
    if (actors < 1) {
      throw new LoadSetupError(
        `the server at ${options.url} has seeded no actors: restart it with SEED_ACTORS=5000, or pass --actors`,
      )
    }
    output.line(
      `Load against ${options.url}: ${actors} actors, ${options.concurrency} concurrent requests, ${options.durationMs / 1000} s per run, L2 ${info.hasL2 ? 'Redis' : 'none'}`,
    )
    const parts = { options, actors, client, admin }
    const order = options.order === 'cached-first' ? [true, false] : [false, true]
    const runs: RunReport[] = []
    try {
      for (const caching of order) runs.push(await oneRun(caching, parts, output, signal))
    } finally {
      await admin.setCaching(info.caching).catch(() => {})
    }
    const cached = runs.find((r) => r.caching) as RunReport
    const uncached = runs.find((r) => !r.caching) as RunReport
    return {
      url: options.url,
      actors,
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      hasL2: info.hasL2,
      cached,
      uncached,
      order: options.order,
      checks: checkPromises(cached, uncached),
    }
  } finally {
    client.close()
  }
}
