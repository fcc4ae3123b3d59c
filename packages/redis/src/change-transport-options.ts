import { InvalidOptionError } from '@actor-cache/core'
import { createClient } from 'redis'
import type { BreakerOptions } from './breaker.js'
import {
  type AnyRedisClient,
  type Commander,
  resolveComponentOptions,
  type SingleClient,
} from './connection.js'
import { checkShardedName, checkShards, isIntIn as int, shardKeys } from './queue-shards.js'

/** Options of {@link createRedisChangeTransport} every connection style shares. */
export interface RedisChangeTransportCommonOptions {
  /** First segment of every key and channel. @default 'ac' (as the other components) */
  prefix?: string
  /**
   * Name of the change stream: one relay lease, one checkpoint and `shards` streams per name.
   * 1-64 letters, digits, `_`, `.` or `-`. @default 'changes'
   */
  name?: string
  /**
   * Streams the records are spread over, 1 to 64 (an entity's records all go to one). Their hash
   * tags spread over the cluster's slots as a sharded write queue's do. Every process of one
   * stream must use the same value; change it only with no relay running and every reader
   * reopened. @default 1
   */
  shards?: number
  /**
   * Entries each stream keeps at most (`XADD MAXLEN ~`, so a little more in whole stream nodes):
   * a reader further behind finds `lost`. @default 1_000_000
   */
  maxLength?: number
  /**
   * A reader group none of whose consumers read for this long (ms) is removed by `trim()`.
   * Readers must call `read` more often than this. @default 60_000
   */
  readerTimeout?: number
  /**
   * Per-command timeout in ms: a call never waits longer, whatever the connection does.
   * @default 3000
   */
  commandTimeout?: number
  /** Circuit breaker settings. */
  breaker?: BreakerOptions
}

/** Connect with your client: the transport never closes it. */
export interface RedisChangeTransportClientOptions extends RedisChangeTransportCommonOptions {
  /** A connected node-redis client (`createClient`) or cluster client (`createCluster`). */
  client: AnyRedisClient
  url?: never
}

/** Let the transport connect to one server itself; `close()` closes that connection. */
export interface RedisChangeTransportUrlOptions extends RedisChangeTransportCommonOptions {
  /** `redis://` or `rediss://` URL of a single server (not a cluster). */
  url: string
  client?: never
}

/** Options of {@link createRedisChangeTransport}: a `client`, or a `url` to connect to. */
export type RedisChangeTransportOptions =
  | RedisChangeTransportClientOptions
  | RedisChangeTransportUrlOptions

/** The keys and channels of one change stream. */
export interface ChangeKeys {
  /** The relay lease: a string holding the holder's token, with the lease's expiry. */
  lease: string
  /** The relay hash: `epoch` (latest), `holder` (token, cleared on release), `owner`, `cp`. */
  relay: string
  /** One stream per shard. */
  streams: readonly string[]
  /** One meta hash per shard (`fence`, `run`, `n`), in its stream's slot. */
  metas: readonly string[]
  /**
   * One hash per shard, in its stream's slot: when each reader group last read (server ms).
   * Consumer idle times cannot tell: Redis before 7.2 does not count a read that found nothing.
   */
  seen: readonly string[]
  /** Readers wait on it: a relay published. */
  published: string
  /** The relay waits on it: a change was appended. */
  wake: string
}

/** The options of a change transport, checked, with their defaults. */
export interface ResolvedChangeOptions {
  commander: Commander
  client: AnyRedisClient
  /** True when the transport created `client` (from `url`) and must connect and close it. */
  ownsClient: boolean
  name: string
  shards: number
  maxLength: number
  readerTimeout: number
  keys: ChangeKeys
}

/** The keys of stream `name` under `prefix` with `shards` shards. */
export function changeKeys(prefix: string, name: string, shards: number): ChangeKeys {
  const tag = `{${prefix}:${name}}`
  const streams = shardKeys(prefix, 'cs', name, shards)
  return {
    lease: `${prefix}:cs:${tag}:lease`,
    relay: `${prefix}:cs:${tag}:relay`,
    streams,
    metas: streams.map((s) => `${s}:meta`),
    seen: streams.map((s) => `${s}:seen`),
    published: `${prefix}:${name}:published`,
    wake: `${prefix}:${name}:wake`,
  }
}

/**
 * Checks the options of a change transport; nothing is sent (a `url` client is created, not
 * connected).
 * @throws {InvalidOptionError} naming the first bad option and its value
 */
export function resolveChangeOptions(options: RedisChangeTransportOptions): ResolvedChangeOptions {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError('options', 'must be an object')
  const { url } = options
  if (url !== undefined && options.client !== undefined)
    throw new InvalidOptionError('url', 'give either client or url, not both')
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\/./.test(url)))
    throw new InvalidOptionError('url', `must be a redis:// or rediss:// URL, got ${String(url)}`)
  const name = checkShardedName(options.name ?? 'changes')
  const shards = checkShards(options.shards)
  const maxLength = options.maxLength ?? 1_000_000
  if (!int(maxLength, 1)) {
    throw new InvalidOptionError(
      'maxLength',
      `must be a positive integer, got ${String(options.maxLength)}`,
    )
  }
  const readerTimeout = options.readerTimeout ?? 60_000
  if (!int(readerTimeout, 1)) {
    throw new InvalidOptionError(
      'readerTimeout',
      `must be a positive integer number of ms, got ${String(options.readerTimeout)}`,
    )
  }
  // Checks prefix, commandTimeout and breaker (and client, when given) before a url client exists.
  const placeholder = { sendCommand() {} } as unknown as AnyRedisClient
  resolveComponentOptions({ ...options, client: options.client ?? placeholder })
  const client = options.client ?? urlClient(url as string)
  const { commander, prefix } = resolveComponentOptions({ ...options, client })
  return {
    commander,
    client,
    ownsClient: options.client === undefined,
    name,
    shards,
    maxLength,
    readerTimeout,
    keys: changeKeys(prefix, name, shards),
  }
}

/**
 * A client for `url` (not connected): fails fast while disconnected; until its first connection
 * succeeds a failure is final and reported as it is (as `connectRedis` does), afterwards it
 * reconnects with backoff forever.
 */
function urlClient(url: string): AnyRedisClient {
  try {
    let everReady = false
    const client = createClient({
      url,
      disableOfflineQueue: true,
      socket: {
        reconnectStrategy: (retries: number, cause: Error) =>
          everReady ? Math.min(2000, 50 * 2 ** Math.min(retries, 6)) : cause,
      },
    }) as unknown as SingleClient
    client.on('ready', () => {
      everReady = true
    })
    // An 'error' listener is required: without it node-redis errors crash the process.
    client.on('error', () => {})
    return client
  } catch (error) {
    throw new InvalidOptionError('url', `cannot be parsed: ${(error as Error).message}`, {
      cause: error,
    })
  }
}
