/** A private Prometheus server (Debian's `prometheus` binary) on a port of its own. */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually } from './helpers.js'

export interface PrometheusServer {
  url: string
  /** GET `path` of its HTTP API, parsed. */
  api<T>(path: string): Promise<T>
  stop(): Promise<void>
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Starts Prometheus scraping `target` (host:port) every second, with `rules` loaded. */
export async function privatePrometheus(target: string, rules: string): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ac-prom-'))
  await writeFile(join(dir, 'rules.yml'), rules)
  await writeFile(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'rule_files: [rules.yml]',
      'scrape_configs:',
      `  - { job_name: actor-cache, static_configs: [{ targets: ["${target}"] }] }`,
      '',
    ].join('\n'),
  )
  const port = await freePort()
  let output = ''
  let exited: string | undefined
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8')
    stream?.on('data', (chunk: string) => {
      output = (output + chunk).slice(-8192)
    })
  }
  child.on('error', (error) => {
    exited = `could not start prometheus (install it with \`apt-get install prometheus\`): ${error.message}`
  })
  child.on('exit', (code, signal) => {
    exited ??= `prometheus exited (code ${code}, signal ${signal})`
  })
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await gone
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await eventually(
      async () =>
        exited !== undefined ||
        (await fetch(`${url}/-/ready`).then(
          (r) => r.ok,
          () => false,
        )),
      60_000,
      `prometheus to be ready on port ${port}`,
    )
    if (exited !== undefined) throw new Error(`${exited}:\n${output}`)
  } catch (error) {
    await stop()
    throw error
  }
  return {
    url,
    async api<T>(path: string): Promise<T> {
      const response = await fetch(`${url}${path}`)
      const body = (await response.json()) as { status: string; data: T; error?: string }
      if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error}`)
      return body.data
    },
    stop,
  }
}
