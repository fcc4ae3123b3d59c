import { type ChildProcess, spawn } from 'node:child_process'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import { createHttpClient } from '../load/http-client.js'
import { formatPropagation, measurePropagation } from './propagation.js'

// `pnpm demo:two`: two demo servers sharing Redis and PostgreSQL, and how fast a write on one
// shows on the other (README: "Two instances")

const env = process.env
const set = (name: string): string | undefined =>
  env[name] === undefined || env[name] === '' ? undefined : env[name]
const REDIS_URL = set('REDIS_URL') ?? 'redis://127.0.0.1:6379'
const DATABASE_URL =
  set('DATABASE_URL') ?? 'postgresql://postgres@127.0.0.1:5432/test?schema=demo_two'
const PORTS = [Number(set('PORT_A') ?? 3001), Number(set('PORT_B') ?? 3002)] as const
const ROUNDS = Number(set('TWO_ROUNDS') ?? 300)
const KEEP = process.argv.includes('--keep')
const MAIN = new URL('../main.js', import.meta.url).pathname
const GM_TOKEN = set('LOAD_GM_TOKEN') ?? 'demo-gm-token'

/** Creates the schema `?schema=` names, so both servers migrate into it. */
async function ensureSchema(url: string): Promise<void> {
  const schema = new URL(url).searchParams.get('schema')
  if (schema === null) return
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`the schema of DATABASE_URL must be a plain identifier, got "${schema}"`)
  }
  const admin = await connectPostgres(url, { connectionTimeoutMillis: 5000 })
  try {
    await admin.$executeRawUnsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
  } finally {
    await admin.$disconnect()
  }
}

interface Instance {
  name: string
  url: string
  child: ChildProcess
}

/** Starts `node dist/main.js` on `port`, its output prefixed; resolves once it listens. */
function startInstance(name: string, port: number): Promise<Instance> {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...env,
      PORT: String(port),
      REDIS_URL,
      DATABASE_URL,
      REDIS_PREFIX: set('REDIS_PREFIX') ?? 'demo-two',
      SEED_ACTORS: set('SEED_ACTORS') ?? '200',
      LOG_LEVEL: set('LOG_LEVEL') ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return new Promise((resolve, reject) => {
    let pending = ''
    let url: string | undefined
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) {
        console.log(`[${name}] ${line}`)
        url ??= /^listening on (http:\/\/\S+)/.exec(line)?.[1]
        // the banner ends with how to stop it
        if (url !== undefined && /^\s+stop:/.test(line)) resolve({ name, url, child })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code, signal) =>
      reject(new Error(`server ${name} exited (code ${code}, signal ${signal}) before listening`)),
    )
  })
}

async function stop(instance: Instance): Promise<void> {
  const { child } = instance
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await gone
}

const instances: Instance[] = []
try {
  console.log(`Two demo servers sharing Redis (${REDIS_URL}) and PostgreSQL (${DATABASE_URL})`)
  await ensureSchema(DATABASE_URL)
  // one after the other: the first seeds the shared database, the second finds it seeded
  for (const [i, port] of PORTS.entries()) instances.push(await startInstance('AB'[i]!, port))
  const [a, b] = instances as [Instance, Instance]
  console.log(`\nA: ${a.url}   B: ${b.url}   measuring ${ROUNDS} writes ...`)
  const clients = [createHttpClient(a.url, 4), createHttpClient(b.url, 4)] as const
  const actors = Array.from({ length: 20 }, (_, i) => String(i + 1))
  const report = await measurePropagation({
    servers: clients,
    token: GM_TOKEN,
    actors,
    rounds: ROUNDS,
  })
  for (const client of clients) client.close()
  console.log('')
  for (const line of formatPropagation(report)) console.log(line)
  if (KEEP) {
    console.log(`\nboth servers keep running: A ${a.url}, B ${b.url}; Ctrl+C stops both`)
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()))
  }
} catch (error) {
  console.error(`pnpm demo:two failed: ${(error as Error).message}`)
  process.exitCode = 1
} finally {
  await Promise.all(instances.map(stop))
}
