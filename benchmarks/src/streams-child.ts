/**
 * The second process of the streams benchmark: a change stream over the Redis transport in a
 * process of its own, reporting each receipt to the parent. This module is both the parent's
 * handle on it and, run with {@link CHILD_FLAG}, the child itself.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createPrismaChangeLog } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import { type AnyRedisClient, createRedisChangeTransport } from '@actor-cache/redis'
import { createChangeStream } from '@actor-cache/state-tracker'
import { connectRedis } from './connect-redis.js'
import { type Arrivals, now } from './streams-paths.js'

const CHILD_FLAG = '--actor-cache-streams-child'

export interface ChildData {
  databaseUrl: string
  schema: string
  redisUrl: string
  prefix: string
  name: string
  shards: number
  type: string
}

type ChildMessage = { ready: true } | { i: number; at: number } | { error: string }

/** The subscriber of the second process: a change stream over the transport, reporting receipts. */
async function childMain(data: ChildData): Promise<void> {
  const prisma = await connectPostgres(data.databaseUrl, { schema: data.schema, max: 2 })
  const client = (await connectRedis(data.redisUrl, 'streams')) as unknown as AnyRedisClient
  const transport = createRedisChangeTransport({
    client,
    prefix: data.prefix,
    name: data.name,
    shards: data.shards,
  })
  const stream = createChangeStream({ log: createPrismaChangeLog({ prisma }), transport })
  const sub = stream.subscribe({ entityType: data.type }, { fromNow: true })
  await sub.start()
  const send = (m: ChildMessage) => {
    if (process.connected) process.send?.(m)
  }
  const done = (async () => {
    for await (const r of sub) send({ i: (r.newValue as { i: number }).i, at: now() })
  })()
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    void (async () => {
      await stream.close()
      await done.catch(() => {})
      await transport.close()
      await (client as unknown as { close(): Promise<void> }).close()
      await prisma.$disconnect()
      if (process.connected) process.disconnect()
    })()
  }
  process.on('message', stop)
  // the parent died without asking: close and leave anyway
  process.on('disconnect', stop)
  send({ ready: true })
}

if (process.argv.includes(CHILD_FLAG)) {
  const data = JSON.parse(process.env.ACTOR_CACHE_STREAMS_CHILD ?? '{}') as ChildData
  childMain(data).catch((error: unknown) => {
    process.send?.({ error: String((error as Error)?.stack ?? error) })
    process.exit(1)
  })
}

/** Starts the second process and waits until its subscription has started. */
export async function startChild(data: ChildData, arrivals: Arrivals): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG], {
    env: { ...process.env, ACTOR_CACHE_STREAMS_CHILD: JSON.stringify(data) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the subscriber process did not start')),
      30_000,
    )
    child.on('message', (m: ChildMessage) => {
      if ('ready' in m) {
        clearTimeout(timer)
        resolve()
      } else if ('error' in m) {
        clearTimeout(timer)
        reject(new Error(`subscriber process: ${m.error}`))
      } else arrivals.arrived(m.i, m.at)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the subscriber process exited (${code})`))
    })
  })
  return child
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.send('close')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}
