import { spawn } from 'node:child_process'

/** What a run of the program came to. */
export interface ProgramRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** Active resources (stdio excluded) right after the program's last close() resolved. */
  readonly activeAfterClose: readonly string[] | undefined
  /** Active resources once they stopped changing (or at the program's bound), and when. */
  readonly leftOpen: readonly string[] | undefined
  readonly settledAfterMs: number | undefined
  /** From the program's last close() to its exit, in ms (as seen from here). */
  readonly exitAfterCloseMs: number | undefined
  readonly killedAtDeadline: boolean
  readonly output: string
}

const CLOSED = /^@@closed (.*)$/m
const SETTLED = /^@@settled (\d+) (.*)$/m

/**
 * Runs `node <script>` and waits for it to exit by itself. `deadlineMs` only keeps a process that
 * never exits from hanging the test: it is killed then, and the run fails.
 */
export function runProgram(
  script: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; deadlineMs: number },
): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    let closedAt: number | undefined
    const collect = (chunk: Buffer) => {
      output += chunk.toString()
      if (closedAt === undefined && CLOSED.test(output)) closedAt = performance.now()
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    let killedAtDeadline = false
    const deadline = setTimeout(() => {
      killedAtDeadline = true
      child.kill('SIGKILL')
    }, options.deadlineMs)
    child.on('error', (error) => {
      clearTimeout(deadline)
      reject(error)
    })
    child.on('close', (code, signal) => {
      const exitedAt = performance.now()
      clearTimeout(deadline)
      const closed = CLOSED.exec(output)?.[1]
      const settled = SETTLED.exec(output)
      resolve({
        code,
        signal,
        activeAfterClose: closed === undefined ? undefined : (JSON.parse(closed) as string[]),
        leftOpen: settled?.[2] === undefined ? undefined : (JSON.parse(settled[2]) as string[]),
        settledAfterMs: settled?.[1] === undefined ? undefined : Number(settled[1]),
        exitAfterCloseMs: closedAt === undefined ? undefined : exitedAt - closedAt,
        killedAtDeadline,
        output,
      })
    })
  })
}
