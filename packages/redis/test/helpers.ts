import type { QueuedWrite } from '@actor-cache/core'
import { createClient } from 'redis'
import type { AnyRedisClient } from '../src/index.js'
import type { RedisServer } from './servers.js'

/**
 * `client` with its calls of `methods` passed to `hook` first: a hook that returns a promise
 * answers in place of the client; one that returns `undefined` lets the call through.
 */
export function intercept(
  client: AnyRedisClient,
  hook: (method: string, args: unknown[]) => Promise<unknown> | undefined,
  methods: readonly string[] = ['sendCommand'],
): AnyRedisClient {
  const target = client as unknown as Record<string | symbol, unknown>
  return new Proxy(target, {
    get(t, p) {
      const v = Reflect.get(t, p, t)
      if (typeof v !== 'function') return v
      if (typeof p !== 'string' || !methods.includes(p)) return v.bind(t)
      return (...args: unknown[]) =>
        hook(p, args) ?? (v as (...a: unknown[]) => unknown).apply(t, args)
    },
  }) as unknown as AnyRedisClient
}

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
