/** A child process of a fault test, talking over IPC: lines it sent, and waiting for one. */
import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

export interface Child {
  proc: ChildProcess
  lines: string[]
  /** Resolves with the first line `test` accepts; rejects when the child exits first. */
  waitFor(test: (line: string) => boolean, what: string): Promise<string>
}

/** Starts `node <script>` (a path under the package) with `env` added, stderr kept for errors. */
export function spawnChild(script: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [resolve(root, script)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  proc.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000)
  })
  const lines: string[] = []
  const waiting = new Set<() => void>()
  proc.on('message', (m) => {
    lines.push(String(m))
    for (const w of [...waiting]) w()
  })
  proc.on('exit', () => {
    for (const w of [...waiting]) w()
  })
  return {
    proc,
    lines,
    waitFor(test, what) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          const found = lines.find(test)
          if (found !== undefined) {
            waiting.delete(check)
            resolvePromise(found)
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            waiting.delete(check)
            reject(
              new Error(
                `${script} exited before ${what}: ${lines.slice(-3).join(' | ')}\n${stderr}`,
              ),
            )
          }
        }
        waiting.add(check)
        check()
      })
    },
  }
}
