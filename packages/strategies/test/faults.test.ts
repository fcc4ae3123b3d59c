/**
 * Faults under a TieredCache: PostgreSQL unreachable under write-behind load (R7), Redis killed
 * and restarted under reads (R1). PostgreSQL is reached through a TCP proxy the test can cut;
 * Redis is a private redis-server on a random port.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { createMemoryWriteQueue, QueueFullError } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import { createRedisStore } from '@actor-cache/redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache } from '../src/index.js'
import { eventually, postgres, redis, type TestDb } from './helpers.js'

/** A TCP proxy that can refuse and drop every connection, like a network partition. */
class TcpProxy {
  #server: Server | undefined
  readonly #sockets = new Set<Socket>()
  #blocked = false
  port = 0
  constructor(
    readonly host: string,
    readonly target: number,
  ) {}
  async start(): Promise<void> {
    this.#server = createServer((client) => {
      if (this.#blocked) {
        client.destroy()
        return
      }
      const upstream = createConnection(this.target, this.host)
      for (const s of [client, upstream]) {
        this.#sockets.add(s)
        s.on('close', () => this.#sockets.delete(s))
        s.on('error', () => {})
      }
      client.pipe(upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    const server = this.#server
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    this.port = (server.address() as { port: number }).port
  }
  block(): void {
    this.#blocked = true
    for (const s of this.#sockets) s.destroy()
  }
  unblock(): void {
    this.#blocked = false
  }
  async close(): Promise<void> {
    this.block()
    await new Promise((r) => this.#server?.close(r))
  }
}

let db: TestDb
let proxy: TcpProxy

beforeAll(async () => {
  db = await postgres()
  const url = new URL(db.url)
  proxy = new TcpProxy(url.hostname, Number(url.port || 5432))
  await proxy.start()
})
afterAll(async () => {
  await proxy?.close()
  await db?.drop()
})

describe('PostgreSQL unreachable under write-behind load (R7)', () => {
  it('bounds the queue, rejects at the cap with E_QUEUE_FULL, drains after recovery', async () => {
    const url = new URL(db.url)
    url.port = String(proxy.port)
    // The proxy refuses and drops connections at once, so PostgreSQL "down" fails fast whatever
    // these bounds are; they are generous so that a slow PostgreSQL after recovery (a loaded
    // machine) is not taken for a failing one.
    const prisma = await connectPostgres(url.toString(), {
      schema: db.schema,
      connectionTimeoutMillis: 10_000,
      statementTimeout: 30_000,
    })
    const capacity = 300
    const l1 = createMemCache()
    const cache = createTieredCache({
      l1,
      l3: createPrismaStore({ prisma, timeout: 30_000 }),
      queue: createMemoryWriteQueue({ capacity }),
      writeBehind: { interval: 20, linger: 0, retryBase: 20, retryMax: 200, batchSize: 100 },
    })
    const ns = cache.namespace<{ n: number }>('r7', { strategy: 'write_behind' })
    proxy.block()
    let acked = 0
    let rejected = 0
    const started = Date.now()
    for (let i = 0; i < 400; i++) {
      try {
        await ns.set(`k${i}`, { n: i })
        acked++
      } catch (error) {
        expect(error).toBeInstanceOf(QueueFullError)
        rejected++
      }
    }
    expect(acked).toBe(capacity)
    expect(rejected).toBe(400 - capacity)
    expect(Date.now() - started).toBeLessThan(20_000) // nobody hung on the dead database
    // a rejected write is not served from the caches either (the key is dropped there); a read
    // now would ask the unreachable record, so the read is checked after the recovery
    expect(l1.namespace('r7').getSync('k399')).toBeUndefined()
    // the flusher must have met the dead database before it comes back: wait for that, rather
    // than hoping the loop above gave the flusher's timer a turn
    await eventually(
      () => (cache.stats().writeBehind?.failures ?? 0) > 0,
      30_000,
      'the flusher to fail against the unreachable database',
    )
    proxy.unblock()
    const check = createPrismaStore({ prisma: db.prisma, timeout: 60_000 }).namespace<{
      n: number
    }>('r7')
    await eventually(
      async () => {
        const rows = await check.getMany(Array.from({ length: capacity }, (_, i) => `k${i}`))
        return rows.every((r, i) => r?.value.n === i)
      },
      60_000,
      'the backlog to drain into PostgreSQL',
    )
    expect(await check.get('k399')).toBeUndefined()
    expect(await ns.get('k399')).toBeUndefined()
    expect(cache.stats().writeBehind?.failures).toBeGreaterThan(0)
    await cache.close()
    await prisma.$disconnect()
  }, 180_000)
})

/** Does something accept TCP connections on 127.0.0.1:`port`? */
function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = createConnection(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

/** Can a server listen on 127.0.0.1:`port` right now? */
function free(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

/**
 * A port below the kernel's ephemeral range: outgoing connections (this suite opens many) and
 * `listen(0)` never take it, so it stays free between a kill and the restart on the same port.
 */
async function quietPort(): Promise<number> {
  let low = 32768
  try {
    low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    )
  } catch {}
  const from = 20_000
  const to = Math.max(from + 1000, low) - 1
  for (let i = 0; i < 50; i++) {
    const port = from + Math.floor(Math.random() * (to - from))
    if (await free(port)) return port
  }
  throw new Error(`no free port found in ${from}..${to}`)
}

interface RedisServer {
  url: string
  /** Starts it (again, on the same port) and waits until it accepts connections. */
  start(): Promise<void>
  /** SIGKILL, and waits until the process is gone (its port closed). */
  kill(): Promise<void>
}

/** A private redis-server, started, on a port of its own; the test can kill and restart it. */
async function privateRedis(): Promise<RedisServer> {
  let failure: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = redisServer(await quietPort())
    try {
      await server.start()
      return server
    } catch (error) {
      await server.kill()
      failure = error
      // only when another process took the port between the probe and redis-server's bind
      if (!/address already in use/i.test(String(error))) break
    }
  }
  throw failure
}

function redisServer(port: number): RedisServer {
  let child: ChildProcess | undefined
  let output = ''
  return {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      output = ''
      const proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      child = proc
      // read its output as it comes (the pipe never fills), keep the end for failure messages
      for (const stream of [proc.stdout, proc.stderr]) {
        stream?.setEncoding('utf8')
        stream?.on('data', (chunk: string) => {
          output = (output + chunk).slice(-8192)
        })
      }
      let exited: string | undefined
      proc.on('error', (error) => {
        exited = `could not start redis-server (is it installed?): ${error.message}`
      })
      proc.on('exit', (code, signal) => {
        exited ??= `redis-server exited (code ${code}, signal ${signal})`
      })
      await eventually(
        async () => exited !== undefined || (await accepts(port)),
        60_000,
        `redis-server to accept connections on port ${port}`,
      )
      if (exited !== undefined) throw new Error(`${exited} on port ${port}:\n${output}`)
    },
    async kill() {
      const proc = child
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
      const gone = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGKILL')
      await gone
    },
  }
}

const servers: RedisServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill()
})

describe('Redis killed and restarted under reads (R1)', () => {
  it('L1 keeps serving, misses fall back to the loader in bounded time, L2 recovers', async () => {
    const server = await privateRedis()
    servers.push(server)
    const client = await redis(server.url)
    const cache = createTieredCache({
      l1: createMemCache(),
      l2: createRedisStore({
        client,
        commandTimeout: 200,
        breaker: { threshold: 3, resetTimeout: 200 },
      }),
    })
    let loads = 0
    const ns = cache.namespace<string>('r1', {
      record: false,
      ttl: 60_000,
      grace: 60_000,
      loader: (key) => {
        loads++
        return `loaded:${key}`
      },
    })
    expect(await ns.get('hot')).toBe('loaded:hot')
    await server.kill() // gone for sure: the reads below cannot reach it any more
    const started = Date.now()
    for (let i = 0; i < 100; i++) expect(await ns.get('hot')).toBe('loaded:hot')
    // a cold key: L2 fails fast, the loader answers, the value is still cached in L1
    expect(await ns.get('cold')).toBe('loaded:cold')
    expect(await ns.get('cold')).toBe('loaded:cold')
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(loads).toBe(2)
    expect(ns.stats().errors).toBeGreaterThan(0)
    await server.start()
    await eventually(
      async () => {
        await ns.set('after', 'restart').catch(() => undefined)
        return (
          (
            await createRedisStore({ client })
              .namespace('r1')
              .get('after')
              .catch(() => undefined)
          )?.value === 'restart'
        )
      },
      60_000,
      'L2 to take writes again',
    )
    await cache.close()
    await client.close()
    await server.kill()
  }, 180_000)
})
