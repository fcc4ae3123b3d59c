import type { QueuedWrite } from '@actor-cache/core'
import { createClient } from 'redis'
import type { AnyRedisClient } from '../src/index.js'
import type { RedisServer } from './servers.js'

/** Connects a plain node-redis client that fails fast while disconnected. */
export async function connect(
  url: string,
  extra: Record<string, unknown> = {},
): Promise<AnyRedisClient> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: 50, connectTimeout: 1000 },
    ...extra,
  })
  client.on('error', () => {})
  await client.connect()
  return client as unknown as AnyRedisClient
}

/**
 * Polls `check` every 10 ms until it returns true, or fails after `ms`. Tests wait on conditions
 * this way, never on fixed sleeps: the bound is generous (a loaded machine only makes it slower),
 * and a passing check returns at once.
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A write-behind queue item for key `key` (namespace `n`), as the queue tests enqueue. */
export function queuedWrite(key: string, version = 1): QueuedWrite {
  return {
    namespace: 'n',
    key,
    op: 'set',
    value: 1,
    version,
    expiresAt: null,
    tags: [],
    enqueuedAt: 0,
  }
}

/** Clients the server holds blocked (e.g. in XREADGROUP BLOCK), from INFO. */
export async function blockedClients(server: RedisServer): Promise<number> {
  const info = await server.cli('INFO', 'clients')
  return Number(/blocked_clients:(\d+)/.exec(info)?.[1] ?? Number.NaN)
}
