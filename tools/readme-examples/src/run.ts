import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'

/** Outcome of one example run. */
export type RunOutcome =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly ms: number; readonly reason: string; readonly output: string }

// Loaded into every example: on SIGUSR2 it lists what keeps the event loop alive, so a run that
// does not exit says which handles it left open. A signal listener does not keep a process alive.
const HANDLE_REPORTER = `process.on('SIGUSR2', () => {
  const counts = {}
  for (const name of process.getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1
  // stdout and stderr are pipes to the runner: not the example's
  counts.PipeWrap -= 2
  if (!(counts.PipeWrap > 0)) delete counts.PipeWrap
  process.stderr.write('\\n@@open-handles ' + JSON.stringify(counts) + '\\n')
})
`
const OPEN_HANDLES = /\n@@open-handles (.*)\n/

/** Writes the helper every run loads; returns its path. */
export async function writeHandleReporter(dir: string): Promise<string> {
  const path = join(dir, 'open-handles.mjs')
  await writeFile(path, HANDLE_REPORTER)
  return path
}

/**
 * Runs `script` with node: it passes when it exits with 0 by itself within `timeoutMs`. A process
 * still alive at the deadline fails, naming the handles that keep it alive.
 */
export function runExample(
  script: string,
  options: { cwd: string; timeoutMs: number; reporter: string; env: NodeJS.ProcessEnv },
): Promise<RunOutcome> {
  const started = performance.now()
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', options.reporter, script], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGUSR2')
      setTimeout(() => child.kill('SIGKILL'), 1000).unref()
    }, options.timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const ms = performance.now() - started
      const handles = OPEN_HANDLES.exec(output)?.[1]
      const printed = output.replace(OPEN_HANDLES, '\n')
      if (timedOut) {
        const open = handles ? ` Open handles: ${handles}.` : ''
        resolve({
          ok: false,
          ms,
          reason: `did not exit within ${options.timeoutMs / 1000}s: something it opened is still open (a client, bus, queue, timer or server the example does not close).${open}`,
          output: printed,
        })
      } else if (code !== 0) {
        resolve({
          ok: false,
          ms,
          reason: signal ? `killed by ${signal}` : `exited with code ${code}`,
          output: printed,
        })
      } else {
        resolve({ ok: true, ms })
      }
    })
  })
}

/** Whether something accepts TCP connections at host:port within a second. */
export function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}
