/**
 * The Redis Streams write-behind queue on a private 3-master Redis Cluster: enqueue and flush
 * (claim + ack) rows/s with 1 stream vs several shards, with 1 and 3 instances. An instance is a
 * worker thread with its own cluster connections and queue object, as a process of its own would
 * have; the cluster's three redis-server processes run on this machine.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import type { QueuedWrite } from '@actor-cache/core'
import { type AnyRedisClient, createRedisWriteQueue } from '@actor-cache/redis'
import { createCluster } from 'redis'

/** Options of the queue suite. */
export interface QueueSuiteOptions {
  /** Writes per round (split over the instances). @default 20_000 */
  rows?: number
  /** Measured rounds per case (after one warm-up round). @default 5 */
  rounds?: number
  /** Shard counts compared. @default [1, 3, 6] */
  shards?: readonly number[]
  /** Instance counts compared. @default [1, 3] */
  instances?: readonly number[]
  log?: (line: string) => void
}

/** Median rows/s of one case. */
export interface QueueCaseResult {
  shards: number
  instances: number
  enqueuePerSec: number
  flushPerSec: number
}

/** Single-item enqueues each instance keeps in flight (write-behind enqueues one write a call). */
const IN_FLIGHT = 32
/** Writes one claim takes (the flusher's default batch size). */
const BATCH = 500

const run = promisify(execFile)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1] as number
}

interface InstanceData {
  kind: 'actor-cache-queue-bench'
  rootNodes: { url: string }[]
  name: string
  shards: number
  consumer: string
  /** First key number and count of this instance's writes. */
  from: number
  rows: number
}

type Command = 'enqueue' | 'flush' | 'close'
type Reply = { ms: number; count: number }

/** The work of one instance, run in a worker thread. */
async function instanceMain(data: InstanceData): Promise<void> {
  const client = createCluster({ rootNodes: data.rootNodes })
  client.on('error', () => {})
  await client.connect()
  const queue = createRedisWriteQueue<QueuedWrite>({
    client: client as unknown as AnyRedisClient,
    prefix: 'bench',
    name: data.name,
    shards: data.shards,
    consumer: data.consumer,
    capacity: 1_000_000,
  })
  const value = { hp: 100, mp: 50, level: 7, name: 'actor', buffs: ['haste', 'shield'] }
  const handlers: Record<Command, () => Promise<number>> = {
    async enqueue() {
      let next = 0
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < data.rows) {
            const key = `actor:${data.from + next++}`
            await queue.enqueue([
              {
                namespace: 'bench',
                key,
                op: 'set',
                value,
                version: 1,
                expiresAt: null,
                tags: [],
                enqueuedAt: 0,
              },
            ])
          }
        }),
      )
      return data.rows
    },
    async flush() {
      let count = 0
      // until two claims in a row come back empty (the other instances hold the rest)
      for (let empty = 0, round = 0; empty < 2 && round < 1_000_000; round++) {
        const got = await queue.claim(BATCH)
        empty = got.length === 0 ? empty + 1 : 0
        count += got.length
        await queue.ack(got.map((d) => d.id))
      }
      return count
    },
    async close() {
      await queue.close()
      await client.close()
      return 0
    },
  }
  parentPort?.on('message', async (command: Command) => {
    const t0 = process.hrtime.bigint()
    const count = await handlers[command]()
    const reply: Reply = { ms: Number(process.hrtime.bigint() - t0) / 1e6, count }
    parentPort?.postMessage(reply)
    if (command === 'close') parentPort?.close()
  })
  parentPort?.postMessage({ ms: 0, count: 0 } satisfies Reply)
}

if (!isMainThread && (workerData as InstanceData | undefined)?.kind === 'actor-cache-queue-bench') {
  await instanceMain(workerData as InstanceData)
}

/** A worker-thread instance; `send` runs a command and resolves with its reply. */
class Instance {
  readonly #worker: Worker
  #waiting: ((reply: Reply) => void) | undefined
  #failed: ((error: unknown) => void) | undefined
  readonly ready: Promise<Reply>

  constructor(data: InstanceData) {
    this.#worker = new Worker(new URL(import.meta.url), { workerData: data })
    this.#worker.on('message', (reply: Reply) => this.#waiting?.(reply))
    this.#worker.on('error', (error) => this.#failed?.(error))
    this.ready = this.#next()
  }

  #next(): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      this.#waiting = resolve
      this.#failed = reject
    })
  }

  send(command: Command): Promise<Reply> {
    const reply = this.#next()
    this.#worker.postMessage(command)
    return reply
  }

  async stop(): Promise<void> {
    await this.send('close').catch(() => undefined)
    await this.#worker.terminate()
  }
}

/** One round of one case: enqueue `rows` writes over the instances, then drain them. */
async function round(
  rootNodes: { url: string }[],
  name: string,
  shards: number,
  instances: number,
  rows: number,
): Promise<{ enqueuePerSec: number; flushPerSec: number }> {
  const per = Math.floor(rows / instances)
  const all = Array.from(
    { length: instances },
    (_, i) =>
      new Instance({
        kind: 'actor-cache-queue-bench',
        rootNodes,
        name,
        shards,
        consumer: `c${i}`,
        from: i * per,
        rows: per,
      }),
  )
  try {
    await Promise.all(all.map((w) => w.ready))
    let t0 = process.hrtime.bigint()
    await Promise.all(all.map((w) => w.send('enqueue')))
    const enqueueMs = Number(process.hrtime.bigint() - t0) / 1e6
    t0 = process.hrtime.bigint()
    const flushed = await Promise.all(all.map((w) => w.send('flush')))
    const flushMs = Number(process.hrtime.bigint() - t0) / 1e6
    const count = flushed.reduce((n, r) => n + r.count, 0)
    if (count !== per * instances) throw new Error(`flushed ${count} of ${per * instances} writes`)
    return {
      enqueuePerSec: (per * instances * 1000) / enqueueMs,
      flushPerSec: (count * 1000) / flushMs,
    }
  } finally {
    await Promise.all(all.map((w) => w.stop()))
  }
}

/** Enqueue and flush rows/s of the write queue on a private 3-master cluster. */
export async function runQueueSuite(options: QueueSuiteOptions = {}): Promise<QueueCaseResult[]> {
  const log = options.log ?? console.log
  const rows = options.rows ?? 20_000
  const rounds = options.rounds ?? 5
  const shardCounts = options.shards ?? [1, 3, 6]
  const instanceCounts = options.instances ?? [1, 3]
  const cluster = await startCluster(3)
  try {
    const cases = instanceCounts.flatMap((instances) =>
      shardCounts.map((shards) => ({
        shards,
        instances,
        enqueue: [] as number[],
        flush: [] as number[],
      })),
    )
    for (let r = 0; r <= rounds; r++) {
      // rotate the starting case so no case always runs first
      for (let j = 0; j < cases.length; j++) {
        const c = cases[(j + r) % cases.length] as (typeof cases)[number]
        const name = `q-${c.shards}-${c.instances}`
        const got = await round(cluster.rootNodes, name, c.shards, c.instances, rows)
        if (r === 0) continue // warm-up
        c.enqueue.push(got.enqueuePerSec)
        c.flush.push(got.flushPerSec)
      }
      if (r > 0) process.stderr.write(`queue: round ${r}/${rounds}\n`)
    }
    const results = cases.map((c) => ({
      shards: c.shards,
      instances: c.instances,
      enqueuePerSec: median(c.enqueue),
      flushPerSec: median(c.flush),
    }))
    log(report(results, rows, rounds))
    return results
  } finally {
    await cluster.stop()
  }
}

function report(results: readonly QueueCaseResult[], rows: number, rounds: number): string {
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
  const lines = [
    `\n## Write-behind queue on a 3-master Redis Cluster (${rows.toLocaleString('en-US')} writes a round, median of ${rounds} rounds)\n`,
    `Enqueue: single-write \`enqueue\` calls, ${IN_FLIGHT} in flight per instance. Flush: \`claim(${BATCH})\` + \`ack\` until empty, one loop per instance. Ratios against 1 shard with the same instances.\n`,
    '| instances | shards | enqueue rows/s | vs 1 shard | flush rows/s | vs 1 shard |',
    '|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of results) {
    const base = results.find((b) => b.instances === r.instances && b.shards === 1) ?? r
    lines.push(
      `| ${r.instances} | ${r.shards} | ${fmt(r.enqueuePerSec)} | ${(r.enqueuePerSec / base.enqueuePerSec).toFixed(2)}x | ${fmt(r.flushPerSec)} | ${(r.flushPerSec / base.flushPerSec).toFixed(2)}x |`,
    )
  }
  return lines.join('\n')
}

/** A private Redis Cluster of `masters` masters on random loopback ports, no replicas. */
async function startCluster(
  masters: number,
): Promise<{ rootNodes: { url: string }[]; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ac-bench-cluster-'))
  const children: ChildProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null
          ? new Promise((r) => {
              c.once('exit', r)
              c.kill('SIGKILL')
            })
          : undefined,
      ),
    )
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const ports: number[] = []
    for (let i = 0; i < masters; i++) {
      const port = await freePort()
      ports.push(port)
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
      ]
      args.push(
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--dir',
        dir,
      )
      children.push(spawn('redis-server', args, { stdio: 'ignore' }))
    }
    const cli = (port: number, ...args: string[]) =>
      run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])
    for (const port of ports)
      await until(async () => (await cli(port, 'PING')).stdout.includes('PONG'))
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    for (const port of ports) {
      await until(async () =>
        (await cli(port, 'CLUSTER', 'INFO')).stdout.includes('cluster_state:ok'),
      )
    }
    return { rootNodes: ports.map((p) => ({ url: `redis://127.0.0.1:${p}` })), stop }
  } catch (error) {
    await stop()
    throw new Error(
      `the queue benchmark starts its own 3-master Redis Cluster and needs redis-server and redis-cli: ${(error as Error).message}`,
    )
  }
}

/** Polls `check` every 50 ms for at most 30 s. */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new Error('redis-server did not become ready within 30 s')
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}
