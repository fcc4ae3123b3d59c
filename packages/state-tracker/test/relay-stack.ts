/**
 * What the relay tests share: a Redis change transport of its own (a unique name on the shared
 * Redis, or on a private server) and waiting for a condition.
 */
import { randomUUID } from 'node:crypto'
import type { ChangeTransport } from '@actor-cache/core'
import { createRedisChangeTransport } from '@actor-cache/redis'
import { createClient } from 'redis'
import { openDatabase, type TestDatabase } from './logs.js'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

const clientOf = (url: string) =>
  createClient({ url, socket: { connectTimeout: 3000, reconnectStrategy: 100 } })

export type Client = ReturnType<typeof clientOf>

/** A connected client, or an error naming what to start. */
export async function connect(url = REDIS_URL): Promise<Client> {
  const client = clientOf(url)
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `these tests need Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client
}

/** Stream names the tests used, for {@link dropStreams}. */
const used = new Set<string>()

/** A stream name no other test uses (its keys go in {@link dropStreams}). */
export function streamName(base = 's'): string {
  const name = `${base}${randomUUID().slice(0, 8)}`
  used.add(name)
  return name
}

/** Deletes the keys of every stream the tests used with this client's server. */
export async function dropStreams(client: Client): Promise<void> {
  for (const name of used) {
    const keys: string[] = []
    for await (const batch of client.scanIterator({ MATCH: `ac-test:cs:*${name}*`, COUNT: 1000 })) {
      keys.push(...batch)
    }
    if (keys.length > 0) await client.del(keys)
  }
  used.clear()
}

/** A transport on a stream name no other test uses. */
export function transportOn(
  client: Client,
  options: { shards?: number; name?: string; readerTimeout?: number; maxLength?: number } = {},
): ChangeTransport {
  const name = options.name ?? streamName()
  used.add(name)
  return createRedisChangeTransport({
    client,
    prefix: 'ac-test',
    name,
    shards: options.shards ?? 4,
    commandTimeout: 5000,
    ...(options.readerTimeout === undefined ? {} : { readerTimeout: options.readerTimeout }),
    ...(options.maxLength === undefined ? {} : { maxLength: options.maxLength }),
  })
}

/** Waits until `check` holds (the test's timeout bounds a condition that never comes). */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 120_000,
): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** What the tests whose relays, writers or consumers are child processes share. */
export interface ProcessStack {
  db: TestDatabase
  /** The database schema the children connect to. */
  schema: string
  client: Client
  /** Closes the database and drops the streams the test used. */
  close(): Promise<void>
}

/** A PostgreSQL schema of its own and a Redis client, for tests of child processes. */
export async function openProcessStack(): Promise<ProcessStack> {
  const client = await connect()
  const db = await openDatabase('postgres')
  const rows = await db.prisma.$queryRawUnsafe<{ s: string }[]>('SELECT current_schema() AS s')
  return {
    db,
    schema: rows[0]?.s ?? '',
    client,
    async close() {
      await db.close()
      await dropStreams(client)
      await client.close()
    },
  }
}
