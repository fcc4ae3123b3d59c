import { readFileSync } from 'node:fs'
import {
  ActorCacheError,
  channels,
  InvalidOptionError,
  type RedisConfig,
  TierUnavailableError,
} from '@actor-cache/core'
import { createClient, ErrorReply, type RedisClientOptions, type TypeMapping } from 'redis'
import { type BreakerOptions, CircuitBreaker } from './breaker.js'
import { CommandDeadlines } from './command-deadlines.js'
import { WriteWindows } from './write-windows.js'

/**
 * An event listener, compared both ways (as method parameters are): node-redis types its
 * listeners `(...args: any[]) => void`, and this package's listeners take the event's arguments.
 */
type EventListener = { listener(...args: unknown[]): void }['listener']

/** What node-redis clients and cluster clients share, of what this package uses. */
interface ClientLifecycle<Self> {
  duplicate(): Self
  connect(): Promise<unknown>
  close(): Promise<unknown>
  destroy(): void
  on(event: string, listener: EventListener): unknown
  off(event: string, listener: EventListener): unknown
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>
  unsubscribe(channel: string): Promise<void>
  readonly isReady: boolean
  readonly isOpen: boolean
}

/** A command argument: text, or exact bytes. */
export type CommandArgument = string | Buffer

/** Per-command options of node-redis this package passes. */
export interface CommandOptions {
  timeout?: number
  /** Takes a command not yet written off the client's queue when it fires. */
  abortSignal?: AbortSignal
  /** How replies are decoded, e.g. bulk strings as Buffers. */
  typeMapping?: TypeMapping
}

/** The parts of a node-redis client (`createClient`) this package uses. */
export interface SingleClient extends ClientLifecycle<SingleClient> {
  sendCommand(args: readonly CommandArgument[], options?: CommandOptions): Promise<unknown>
}

/** The parts of a node-redis cluster client (`createCluster`) this package uses. */
export interface ClusterClient extends ClientLifecycle<ClusterClient> {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: readonly CommandArgument[],
    options?: CommandOptions,
  ): Promise<unknown>
  readonly masters: readonly unknown[]
  nodeClient(node: never): Promise<unknown>
}

/** A node-redis client or cluster client, connected by its owner. */
export type AnyRedisClient = SingleClient | ClusterClient

/** True when `client` is a cluster client. */
export function isCluster(client: AnyRedisClient): client is ClusterClient {
  return 'masters' in client && 'nodeClient' in client
}

/** Options every Redis-backed component takes. */
export interface RedisComponentOptions {
  /** A connected node-redis client (`createClient`) or cluster client (`createCluster`). */
  client: AnyRedisClient
  /** First segment of every key and channel. @default 'ac' */
  prefix?: string
  /**
   * Per-command timeout in ms: a call never waits longer, whatever the connection does.
   * @default 3000 (the configuration file's `redis.read_timeout` default)
   */
  commandTimeout?: number
  /** Circuit breaker settings. */
  breaker?: BreakerOptions
}

const PREFIX_RE = /^[A-Za-z0-9_.-]{1,32}$/

/** Validates the options shared by the Redis components. */
export function resolveComponentOptions(options: RedisComponentOptions, tier = 'redis') {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError('options', 'must be an object')
  const { client } = options
  if (!client || typeof (client as { sendCommand?: unknown }).sendCommand !== 'function') {
    throw new InvalidOptionError('client', 'must be a node-redis client or cluster client')
  }
  const prefix = options.prefix ?? 'ac'
  if (typeof prefix !== 'string' || !PREFIX_RE.test(prefix)) {
    throw new InvalidOptionError(
      'prefix',
      `must be 1-32 letters, digits, "_", "." or "-", got ${JSON.stringify(prefix)}`,
    )
  }
  const commandTimeout = options.commandTimeout ?? 3000
  if (!Number.isSafeInteger(commandTimeout) || commandTimeout < 1) {
    throw new InvalidOptionError(
      'commandTimeout',
      `must be a positive integer number of ms, got ${String(commandTimeout)}`,
    )
  }
  const threshold = options.breaker?.threshold ?? 5
  const resetTimeout = options.breaker?.resetTimeout ?? 1000
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new InvalidOptionError(
      'breaker.threshold',
      `must be a positive integer, got ${String(threshold)}`,
    )
  }
  if (!Number.isSafeInteger(resetTimeout) || resetTimeout < 1) {
    throw new InvalidOptionError(
      'breaker.resetTimeout',
      `must be a positive integer number of ms, got ${String(resetTimeout)}`,
    )
  }
  return {
    client,
    prefix,
    commandTimeout,
    commander: new Commander(client, tier, commandTimeout, { threshold, resetTimeout }),
  }
}

/** Options that turn node-redis's own per-command timeout off (0 means none there). */
const UNTIMED: CommandOptions = Object.freeze({ timeout: 0 })

/**
 * Sends commands with a timeout, through a circuit breaker, counting them and turning
 * connection failures into `TierUnavailableError`. Server error replies pass through unchanged.
 * @internal
 */
export class Commander {
  readonly client: AnyRedisClient
  readonly breaker: CircuitBreaker
  readonly tier: string
  readonly timeout: number
  readonly #cluster: ClusterClient | undefined
  readonly #deadlines: CommandDeadlines
  readonly #writes: WriteWindows
  /** Commands sent so far (the conformance suite checks rejected input sends none). */
  sent = 0

  constructor(client: AnyRedisClient, tier: string, timeout: number, breaker: BreakerOptions) {
    this.client = client
    this.tier = tier
    this.timeout = timeout
    this.breaker = new CircuitBreaker(tier, breaker)
    this.#cluster = isCluster(client) ? client : undefined
    this.#deadlines = new CommandDeadlines(timeout)
    this.#writes = new WriteWindows(timeout)
  }

  get cluster(): boolean {
    return this.#cluster !== undefined
  }

  /**
   * Sends one command; `key` routes it in a cluster; `options` go to node-redis.
   *
   * A read is sent without node-redis's own command timeout (node-redis 6 arms one of 5 s on every
   * command by default, an `AbortSignal.timeout` and its listener per call, about a third of a
   * sequential GET's client-side cost): the call is bounded here anyway, and a read the server
   * runs late changes nothing. A write still waiting to be sent when its time runs out must be
   * taken off the client's queue instead of being sent after a reconnect: writes share an abort
   * signal per window instead (see {@link WriteWindows}).
   */
  async send<T = unknown>(
    args: readonly CommandArgument[],
    key?: string,
    readonly = false,
    timeout = this.timeout,
    options?: CommandOptions,
  ): Promise<T> {
    this.breaker.enter()
    this.sent++
    const opts = readonly
      ? options === undefined
        ? UNTIMED
        : { ...options, timeout: 0 }
      : options === undefined && timeout === this.timeout
        ? this.#writes.options()
        : options
    try {
      const reply = await this.#bounded(
        this.#cluster
          ? this.#cluster.sendCommand(key, readonly, args, opts)
          : (this.client as SingleClient).sendCommand(args, opts),
        timeout,
      )
      this.breaker.success()
      return reply as T
    } catch (error) {
      throw this.#fail(error, String(args[0] ?? 'command'))
    }
  }

  /** Bounds a command by `timeout` (see {@link CommandDeadlines}). */
  #bounded<T>(pending: Promise<T>, timeout = this.timeout): Promise<T> {
    return this.#deadlines.bound(pending, timeout)
  }

  /**
   * Runs a connection-level operation (connect, subscribe) under the command deadline, mapping
   * failures like commands.
   */
  async within<T>(fn: () => Promise<T>, operation: string): Promise<T> {
    try {
      return await this.#bounded(fn())
    } catch (error) {
      throw this.#fail(error, operation)
    }
  }

  /** Runs `fn` against every master (one client for a single server). */
  async nodes(): Promise<SingleClient[]> {
    if (!this.#cluster) return [this.client as SingleClient]
    this.breaker.enter()
    try {
      const cluster = this.#cluster
      const out = await this.#bounded(
        Promise.all(cluster.masters.map((m) => cluster.nodeClient(m as never))),
      )
      this.breaker.success()
      return out as SingleClient[]
    } catch (error) {
      throw this.#fail(error, 'nodes')
    }
  }

  /** Sends a command to one node client (cluster scans), with the same protections. */
  async sendTo<T = unknown>(node: SingleClient, args: readonly string[]): Promise<T> {
    this.breaker.enter()
    this.sent++
    try {
      const reply = await this.#bounded(node.sendCommand(args))
      this.breaker.success()
      return reply as T
    } catch (error) {
      throw this.#fail(error, args[0] ?? 'command')
    }
  }

  #fail(error: unknown, operation: string): unknown {
    if (error instanceof ErrorReply) {
      // The server answered: it is reachable.
      this.breaker.success()
      return error
    }
    if (error instanceof ActorCacheError) return error
    this.breaker.failure()
    const message = error instanceof Error ? error.message : String(error)
    const wrapped = new TierUnavailableError(`${this.tier} ${operation} failed: ${message}`, {
      tier: this.tier,
      cause: error,
    })
    if (channels.error.hasSubscribers) {
      channels.error.publish({
        tier: this.tier,
        namespace: '',
        durationMs: 0,
        error: wrapped,
        operation,
      })
    }
    return wrapped
  }
}

/** Extra options of {@link connectRedis} beyond the configuration file's `redis:` section. */
export interface ConnectOptions {
  /** Client name shown by `CLIENT LIST`. */
  name?: string
}

/**
 * Maps the normalised `redis:` section of the configuration file to node-redis client options.
 *
 * | setting | node-redis |
 * |---|---|
 * | url / host / port / db | `url` or `socket.host`, `socket.port`, `database` |
 * | username / password | `username`, `password` (ACL or legacy AUTH) |
 * | dial_timeout | `socket.connectTimeout` |
 * | read_timeout, write_timeout | no per-direction timeouts exist; the larger bounds every command (`commandTimeout` of the components) |
 * | max_retries | `socket.reconnectStrategy`: exponential backoff capped at 2 s, retried forever (a cache must come back by itself); commands are not retried: callers fall back to other tiers |
 * | pool_size, min_idle_conns | no equivalent needed: one pipelined connection per role (commands, subscriber, blocking reads) outperforms a pool for non-blocking commands |
 * | tls | `socket.tls`, `ca`, `cert`, `key`, `servername`, `rejectUnauthorized` (files read at connect time) |
 *
 * The offline queue is disabled: while disconnected, commands fail at once instead of queueing.
 */
export function redisClientOptions(
  config: RedisConfig,
  options: ConnectOptions = {},
): RedisClientOptions {
  const tls = config.tls
  const useTls = tls !== false || (config.url?.startsWith('rediss://') ?? false)
  const tlsOptions =
    typeof tls === 'object'
      ? {
          ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
          ...(tls.certFile ? { cert: readFileSync(tls.certFile) } : {}),
          ...(tls.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
          ...(tls.servername ? { servername: tls.servername } : {}),
          rejectUnauthorized: tls.rejectUnauthorized,
        }
      : {}
  const socket = {
    connectTimeout: config.dialTimeout,
    reconnectStrategy: (retries: number) => Math.min(2000, 50 * 2 ** Math.min(retries, 6)),
    ...(config.url ? {} : { host: config.host, port: config.port }),
    ...(useTls ? { tls: true as const, ...tlsOptions } : {}),
  }
  return {
    ...(config.url ? { url: config.url } : {}),
    ...(config.username ? { username: config.username } : {}),
    ...(config.password ? { password: config.password } : {}),
    database: config.db,
    disableOfflineQueue: true,
    ...(options.name ? { name: options.name } : {}),
    socket,
  } as RedisClientOptions
}

/**
 * Creates and connects a node-redis client from the configuration file's `redis:` section.
 * @throws {TierUnavailableError} when the server cannot be reached within `dial_timeout`
 */
export async function connectRedis(
  config: RedisConfig,
  options: ConnectOptions = {},
): Promise<SingleClient> {
  const clientOptions = redisClientOptions(config, options)
  const socket = clientOptions.socket as {
    reconnectStrategy: (retries: number, cause: Error) => number | Error
  }
  const backoff = socket.reconnectStrategy
  let everReady = false
  // Until the first connection succeeds, a failure (refused, TLS, WRONGPASS) is final and
  // reported as it is; afterwards the client reconnects forever.
  socket.reconnectStrategy = (retries, cause) => (everReady ? backoff(retries, cause) : cause)
  const client = createClient(clientOptions) as unknown as SingleClient
  client.on('ready', () => {
    everReady = true
  })
  // An 'error' listener is required: without it node-redis errors crash the process.
  client.on('error', () => {})
  await connectWithin(client, config.dialTimeout, 'cannot connect to Redis')
  return client
}

/**
 * Connects `client`, bounding the whole handshake (TCP, TLS, HELLO/AUTH) by `ms`; on failure
 * destroys it and throws `TierUnavailableError` prefixed with `what`.
 */
export async function connectWithin(
  client: AnyRedisClient,
  ms: number,
  what: string,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${ms} ms`)), ms)
      }),
    ])
  } catch (error) {
    client.destroy()
    throw new TierUnavailableError(`${what}: ${(error as Error).message}`, {
      tier: 'redis',
      cause: error,
    })
  } finally {
    clearTimeout(timer)
  }
}
