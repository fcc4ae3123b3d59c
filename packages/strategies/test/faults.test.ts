/**
 * Faults under a TieredCache: PostgreSQL unreachable under write-behind load (R7), Redis killed
 * and restarted under reads (R1). PostgreSQL is reached through a TCP proxy the test can cut;
 * Redis is a private redis-server on a random port.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { createMemoryWriteQueue, QueueFullError } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import { createRedisStore } from '@actor-cache/redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
    const prisma = await connectPostgres(url.toString(), {
      schema: db.schema,
      connectionTimeoutMillis: 300,
      statementTimeout: 1000,
    })
    const capacity = 300
    const cache = createTieredCache({
      l1: createMemCache(),
      l3: createPrismaStore({ prisma, timeout: 1000 }),
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
    // a rejected write is not served from the caches either (the key is dropped there)
    expect(await ns.get('k399')).toBeUndefined()
    proxy.unblock()
    const check = createPrismaStore({ prisma: db.prisma }).namespace<{ n: number }>('r7')
    await eventually(
      async () => {
        const rows = await check.getMany(Array.from({ length: capacity }, (_, i) => `k${i}`))
        return rows.every((r, i) => r?.value.n === i)
      },
      20_000,
      'the backlog to drain into PostgreSQL',
    )
    expect(await check.get('k399')).toBeUndefined()
    expect(cache.stats().writeBehind?.failures).toBeGreaterThan(0)
    await cache.close()
    await prisma.$disconnect()
  }, 60_000)
})

/** A private redis-server on a random port that the test can kill and restart. */
async function privateRedis(): Promise<{ url: string; start(): Promise<void>; kill(): void }> {
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  const port = (probe.address() as { port: number }).port
  await new Promise((r) => probe.close(r))
  let child: ChildProcess | undefined
  return {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      )
      child.on('error', () => {})
      await eventually(
        () =>
          new Promise<boolean>((resolve) => {
            const s = createConnection(port, '127.0.0.1')
            s.on('connect', () => {
              s.destroy()
              resolve(true)
            })
            s.on('error', () => resolve(false))
          }),
        10_000,
        'redis-server to start (is redis-server installed?)',
      )
    },
    kill() {
      child?.kill('SIGKILL')
    },
  }
}

describe('Redis killed and restarted under reads (R1)', () => {
  it('L1 keeps serving, misses fall back to the loader in bounded time, L2 recovers', async () => {
    const server = await privateRedis()
    await server.start()
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
    server.kill()
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
      10_000,
      'L2 to take writes again',
    )
    await cache.close()
    await client.close()
    server.kill()
  }, 30_000)
})
