/**
 * Test servers: each test file starts its own redis-server processes on random loopback ports,
 * so it can kill, pause or reconfigure them without touching anyone else's Redis.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

async function requireBinary(name: string): Promise<void> {
  try {
    await run(name, ['--version'])
  } catch {
    throw new Error(
      `${name} is not installed: these tests start their own Redis; install redis-server and redis-cli`,
    )
  }
}

/** A redis-server child process. */
export class RedisServer {
  #child: ChildProcess | undefined
  readonly port: number
  readonly dir: string
  readonly args: string[]
  readonly tlsPort: number | undefined

  constructor(port: number, dir: string, args: string[], tlsPort?: number) {
    this.port = port
    this.dir = dir
    this.args = args
    this.tlsPort = tlsPort
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Starts (or restarts, on the same port) and waits until it answers PING. */
  async start(): Promise<void> {
    const child = spawn('redis-server', this.args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    let output = ''
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    const deadline = Date.now() + 30_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited early:\n${output}`)
      if (/Ready to accept connections/.test(output)) return
      if (Date.now() > deadline)
        throw new Error(`redis-server did not start within 30 s:\n${output}`)
      await sleep(20)
    }
  }

  /** redis-cli against this server (plaintext port only). */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args])
    return stdout.trim()
  }

  /** SIGKILL, and wait for the process to be gone. */
  async kill(): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await gone
  }

  pause(): void {
    this.#child?.kill('SIGSTOP')
  }

  resume(): void {
    this.#child?.kill('SIGCONT')
  }

  async stop(): Promise<void> {
    this.resume()
    await this.kill()
  }
}

/** Options of {@link startRedis}. */
export interface StartOptions {
  /** Extra redis-server arguments. */
  args?: string[]
  /** Start TLS-only with these certificate files (plaintext port disabled). */
  tls?: { cert: string; key: string; ca: string; authClients?: 'yes' | 'no' | 'optional' }
}

/** Starts a throwaway redis-server on a random port. */
export async function startRedis(options: StartOptions = {}): Promise<RedisServer> {
  await requireBinary('redis-server')
  const dir = await mkdtemp(join(tmpdir(), 'ac-redis-'))
  const port = await freePort()
  const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
  let args: string[]
  let tlsPort: number | undefined
  if (options.tls) {
    tlsPort = port
    args = [
      ...base,
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--tls-cert-file',
      options.tls.cert,
      '--tls-key-file',
      options.tls.key,
      '--tls-ca-cert-file',
      options.tls.ca,
      '--tls-auth-clients',
      options.tls.authClients ?? 'optional',
    ]
  } else {
    args = [...base, '--port', String(port)]
  }
  const server = new RedisServer(port, dir, [...args, ...(options.args ?? [])], tlsPort)
  await server.start()
  return server
}

/** A throwaway Redis Cluster of `masters` masters (no replicas). */
export interface TestCluster {
  nodes: RedisServer[]
  rootNodes: { url: string }[]
  stop(): Promise<void>
}

export async function startCluster(masters = 3): Promise<TestCluster> {
  await requireBinary('redis-cli')
  const nodes: RedisServer[] = []
  for (let i = 0; i < masters; i++) {
    const n = await startRedis({
      args: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'],
    })
    nodes.push(n)
  }
  await run('redis-cli', [
    '--cluster',
    'create',
    ...nodes.map((n) => `127.0.0.1:${n.port}`),
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  ])
  const deadline = Date.now() + 45_000
  for (;;) {
    const states = await Promise.all(nodes.map((n) => n.cli('cluster', 'info')))
    if (states.every((s) => s.includes('cluster_state:ok'))) break
    if (Date.now() > deadline)
      throw new Error(`cluster did not become ready:\n${states.join('\n')}`)
    await sleep(100)
  }
  return {
    nodes,
    rootNodes: nodes.map((n) => ({ url: n.url })),
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()))
      await Promise.all(nodes.map((n) => rm(n.dir, { recursive: true, force: true })))
    },
  }
}

/** Certificates made with openssl for a TLS test: a CA, a server cert and a client cert. */
export interface TestCerts {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

export async function makeCerts(): Promise<TestCerts> {
  await requireBinary('openssl').catch(async () => {
    await run('openssl', ['version']).catch(() => {
      throw new Error('openssl is not installed: the TLS tests generate certificates with it')
    })
  })
  const dir = await mkdtemp(join(tmpdir(), 'ac-certs-'))
  const p = (f: string): string => join(dir, f)
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir })
  await ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=actor-cache-test-ca',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
  )
  await writeFile(p('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const who of ['server', 'client']) {
    await ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who === 'server' ? 'localhost' : 'actor-cache-client'}`,
      '-keyout',
      p(`${who}.key`),
      '-out',
      p(`${who}.csr`),
    )
    await ssl(
      'x509',
      '-req',
      '-in',
      p(`${who}.csr`),
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      p('san.cnf'),
      '-out',
      p(`${who}.crt`),
    )
  }
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
  }
}
