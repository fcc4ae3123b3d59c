import { spawn } from 'node:child_process'

/** Output of a finished command. */
export interface CommandResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Thrown when a command exits with a non-zero code: names the command and keeps its output. */
export class CommandError extends Error {
  override name = 'CommandError'
  readonly result: CommandResult
  constructor(command: string, cwd: string, result: CommandResult) {
    const output = `${result.stdout}\n${result.stderr}`.trim()
    super(`\`${command}\` in ${cwd} exited with code ${result.code}${output ? `:\n${output}` : ''}`)
    this.result = result
  }
}

/**
 * The environment for child package managers: without the `npm_*` variables the pnpm script
 * running this tool sets (`npm_config_*` would reconfigure npm in the temporary project).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_(config|package|lifecycle|execpath|node_execpath|command)/.test(name)) {
      env[name] = value
    }
  }
  return { ...env, ...extra }
}

/** Runs a command to completion, collecting its output; rejects with {@link CommandError}. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; allowFailure?: boolean },
): Promise<CommandResult> {
  const result = await new Promise<CommandResult>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })
    })
  })
  if (result.code !== 0 && !options.allowFailure) {
    throw new CommandError([command, ...args].join(' '), options.cwd, result)
  }
  return result
}
