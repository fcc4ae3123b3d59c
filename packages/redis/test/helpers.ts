import type { QueuedWrite } from '@actor-cache/core'
import { createClient } from 'redis'
import type { AnyRedisClient } from '../src/index.js'

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

/** Polls `check` every 10 ms until it returns true, or fails after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
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
