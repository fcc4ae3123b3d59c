import { randomUUID } from 'node:crypto'
import {
  type ClaimOptions,
  ClosedError,
  InvalidOptionError,
  jsonSerializer,
  type QueueDelivery,
  type QueuedWrite,
  QueueFullError,
  type QueueStats,
  type Serializer,
  type WriteQueue,
} from '@actor-cache/core'
import { ErrorReply } from 'redis'
import {
  type AnyRedisClient,
  Commander,
  connectWithin,
  type RedisComponentOptions,
  resolveComponentOptions,
} from './connection.js'
import { Script } from './scripts.js'

/** Options of {@link createRedisWriteQueue}. */
export interface RedisWriteQueueOptions extends RedisComponentOptions {
  /** Queue name; the stream is `<prefix>:wq:{<name>}` and the consumer group is `<name>`. */
  name: string
  /** This consumer's name, unique per process. @default a random UUID */
  consumer?: string
  /** Most entries (ready + claimed) the queue holds. @default 100_000 */
  capacity?: number
  /**
   * Claimed entries not acked within this many ms are taken over by other consumers (the
   * claimer probably died). Keep it well above the time a batch takes to persist. @default 30_000
   */
  claimTimeout?: number
  /** Serializer of queued items. @default jsonSerializer */
  serializer?: Serializer
}

/** All-or-nothing XADD under a capacity bound (XLEN counts ready and claimed entries). */
const ENQUEUE = new Script(`
local n = #ARGV - 1
if redis.call('XLEN', KEYS[1]) + n > tonumber(ARGV[1]) then return -1 end
for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', 'd', ARGV[i], 'a', '0') end
return n
`)

/** Acknowledge and delete (entries are never trimmed while pending: deleted only after ack). */
const ACK = new Script(`
local n = 0
for i = 1, #ARGV - 1 do
  if redis.call('XACK', KEYS[1], ARGV[#ARGV], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

/**
 * Re-queue claimed entries: a new entry with the attempt count, the old one acked and deleted.
 * Only entries this consumer still holds (another may have taken them over meanwhile).
 * ARGV: ids..., consumer, group.
 */
const RELEASE = new Script(`
local group = ARGV[#ARGV]
local consumer = ARGV[#ARGV - 1]
local n = 0
for i = 1, #ARGV - 2 do
  local holder = redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1, consumer)
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #holder == 1 and #found == 1 and redis.call('XACK', KEYS[1], group, ARGV[i]) == 1 then
    local fields = found[1][2]
    local data, attempts = nil, 0
    for j = 1, #fields, 2 do
      if fields[j] == 'd' then data = fields[j + 1] end
      if fields[j] == 'a' then attempts = tonumber(fields[j + 1]) end
    end
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('XADD', KEYS[1], '*', 'd', data, 'a', tostring(attempts + 1))
    n = n + 1
  end
end
return n
`)

type StreamEntry = [id: string, fields: string[]]

/**
 * A durable {@link WriteQueue} on a Redis Stream with a consumer group.
 *
 * - `enqueue` resolves only after XADD returned (inside one Lua script, all or none, bounded:
 *   `QueueFullError` at capacity). With Redis persistence (AOF) configured, an acknowledged write
 *   survives a crash of the writer and of Redis; without it, a crash of the writer.
 * - `claim` first takes over entries another consumer claimed and never acked for
 *   `claimTimeout` ms (XAUTOCLAIM; ids of entries deleted meanwhile are skipped), then reads new
 *   ones (XREADGROUP, blocking on a dedicated connection when asked to wait).
 * - `ack` XACKs and XDELs. Nothing is ever trimmed by length, so a claimed but unacked entry
 *   cannot be dropped.
 * - Delivery is at-least-once and unordered across consumers: consumers must apply versioned
 *   writes (newest version wins).
 */
export class RedisWriteQueue<T = QueuedWrite> implements WriteQueue<T> {
  readonly #commander: Commander
  readonly #client: AnyRedisClient
  readonly #stream: string
  readonly #group: string
  readonly #consumer: string
  readonly #capacity: number
  readonly #claimTimeout: number
  readonly #serializer: Serializer
  /** How long a claimed entry stays with its consumer before another may take it (ms). */
  get claimTimeout(): number {
    return this.#claimTimeout
  }
  #blocking: Promise<{ client: AnyRedisClient; commander: Commander }> | undefined
  #groupReady: Promise<void> | undefined
  #autoclaimCursor = '0-0'
  #closed = false

  constructor(options: RedisWriteQueueOptions) {
    const resolved = resolveComponentOptions(options)
    this.#commander = resolved.commander
    this.#client = resolved.client
    if (typeof options.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(options.name)) {
      throw new InvalidOptionError(
        'name',
        `must be 1-64 letters, digits, "_", "." or "-", got ${JSON.stringify(options.name)}`,
      )
    }
    this.#stream = `${resolved.prefix}:wq:{${options.name}}`
    this.#group = options.name
    this.#consumer = options.consumer ?? randomUUID()
    this.#capacity = options.capacity ?? 100_000
    if (!Number.isSafeInteger(this.#capacity) || this.#capacity < 1) {
      throw new InvalidOptionError(
        'capacity',
        `must be a positive integer, got ${String(options.capacity)}`,
      )
    }
    this.#claimTimeout = options.claimTimeout ?? 30_000
    if (!Number.isSafeInteger(this.#claimTimeout) || this.#claimTimeout < 1) {
      throw new InvalidOptionError(
        'claimTimeout',
        `must be a positive integer number of ms, got ${String(options.claimTimeout)}`,
      )
    }
    this.#serializer = options.serializer ?? jsonSerializer
  }

  /** The stream key. */
  get stream(): string {
    return this.#stream
  }

  async enqueue(items: readonly T[]): Promise<void> {
    if (this.#closed) throw new ClosedError('write queue')
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
    if (items.length === 0) return
    if (items.length > this.#capacity) throw new QueueFullError(this.#capacity)
    const payloads = items.map((item) => this.#serializer.serialize(item))
    const n = await ENQUEUE.run<number>(
      this.#commander,
      [this.#stream],
      [String(this.#capacity), ...payloads],
    )
    if (n === -1) throw new QueueFullError(this.#capacity)
  }

  async claim(max: number, options: ClaimOptions = {}): Promise<QueueDelivery<T>[]> {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new InvalidOptionError('max', `must be a positive integer, got ${String(max)}`)
    }
    const blockMs = options.blockMs ?? 0
    if (!(blockMs >= 0) || !Number.isFinite(blockMs)) {
      throw new InvalidOptionError(
        'blockMs',
        `must be a non-negative number of ms, got ${String(blockMs)}`,
      )
    }
    if (this.#closed) return []
    await this.#ensureGroup()
    const out = await this.#takeOver(max)
    if (out.length < max) {
      const wait = out.length === 0 && blockMs > 0 ? Math.ceil(blockMs) : 0
      out.push(...(await this.#readNew(max - out.length, wait)))
    }
    return out
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    await ACK.run(this.#commander, [this.#stream], [...ids, this.#group])
  }

  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    await RELEASE.run(this.#commander, [this.#stream], [...ids, this.#consumer, this.#group])
  }

  async stats(): Promise<QueueStats> {
    await this.#ensureGroup()
    const [length, pending] = await Promise.all([
      this.#commander.send<number>(['XLEN', this.#stream], this.#stream, true),
      this.#withGroup(() =>
        this.#commander.send<[number, ...unknown[]]>(
          ['XPENDING', this.#stream, this.#group],
          this.#stream,
          true,
        ),
      ),
    ])
    const inFlight = Number(pending[0] ?? 0)
    return { ready: length - inFlight, inFlight, capacity: this.#capacity }
  }

  async close(): Promise<void> {
    this.#closed = true
    const b = this.#blocking
    this.#blocking = undefined
    // destroy, not close: close() would wait for a blocked read (and forever if Redis hangs).
    // A read cut short leaves its entries pending; claimTimeout hands them to another consumer.
    if (b) (await b.catch(() => undefined))?.client.destroy()
  }

  #ensureGroup(): Promise<void> {
    this.#groupReady ??= this.#commander
      .send(['XGROUP', 'CREATE', this.#stream, this.#group, '0', 'MKSTREAM'], this.#stream)
      .then(
        () => undefined,
        (error: unknown) => {
          if (error instanceof ErrorReply && error.message.startsWith('BUSYGROUP')) return
          this.#groupReady = undefined
          throw error
        },
      )
    return this.#groupReady
  }

  /** Runs `fn`; if Redis lost the group (restart without persistence), recreates it and retries. */
  async #withGroup<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn()
    } catch (error) {
      if (!(error instanceof ErrorReply) || !error.message.startsWith('NOGROUP')) throw error
      this.#groupReady = undefined
      await this.#ensureGroup()
      return fn()
    }
  }

  async #takeOver(max: number): Promise<QueueDelivery<T>[]> {
    const reply = await this.#withGroup(() =>
      this.#commander.send<[string, StreamEntry[], string[]?]>(
        [
          'XAUTOCLAIM',
          this.#stream,
          this.#group,
          this.#consumer,
          String(this.#claimTimeout),
          this.#autoclaimCursor,
          'COUNT',
          String(max),
        ],
        this.#stream,
      ),
    )
    this.#autoclaimCursor = String(reply[0])
    // Redis 7 lists entries deleted meanwhile separately (reply[2]): gaps, not deliveries.
    const entries = (reply[1] ?? []).filter(
      (e): e is StreamEntry => Array.isArray(e) && e[1] !== null,
    )
    if (entries.length === 0) return []
    const pending = await this.#commander.send<[string, string, number, number][]>(
      [
        'XPENDING',
        this.#stream,
        this.#group,
        entries[0]?.[0] as string,
        entries.at(-1)?.[0] as string,
        String(entries.length),
        this.#consumer,
      ],
      this.#stream,
      true,
    )
    const deliveries = new Map(pending.map((p) => [String(p[0]), Number(p[3])]))
    return entries.map((e) => this.#delivery(e, deliveries.get(e[0]) ?? 2))
  }

  async #readNew(count: number, blockMs: number): Promise<QueueDelivery<T>[]> {
    const args = ['XREADGROUP', 'GROUP', this.#group, this.#consumer, 'COUNT', String(count)]
    if (blockMs > 0) args.push('BLOCK', String(blockMs))
    args.push('STREAMS', this.#stream, '>')
    let reply: unknown
    if (blockMs > 0) {
      // One blocking read at a time on the dedicated connection; each gets its own deadline,
      // counted from when it is sent.
      const turn = this.#blockingTurn.then(async () => {
        const { commander } = await this.#blockingConnection()
        return this.#withGroup(() =>
          commander.send<unknown>(args, this.#stream, false, this.#commander.timeout + blockMs),
        )
      })
      this.#blockingTurn = turn.catch(() => undefined)
      reply = await turn
    } else {
      reply = await this.#withGroup(() => this.#commander.send<unknown>(args, this.#stream))
    }
    return readStreamReply(reply).map((e) => this.#delivery(e, 1))
  }

  #blockingTurn: Promise<unknown> = Promise.resolve()

  /** The dedicated connection for blocking reads (a blocking read stalls a shared one). */
  #blockingConnection(): Promise<{ client: AnyRedisClient; commander: Commander }> {
    if (this.#closed) return Promise.reject(new ClosedError('write queue'))
    this.#blocking ??= (async () => {
      const client = this.#client.duplicate()
      client.on('error', () => {})
      try {
        await connectWithin(client, this.#commander.timeout, 'redis blocking connection')
      } catch (error) {
        this.#blocking = undefined
        throw error
      }
      if (this.#closed) {
        client.destroy()
        throw new ClosedError('write queue')
      }
      return { client, commander: new Commander(client, 'redis', this.#commander.timeout, {}) }
    })()
    return this.#blocking
  }

  #delivery([id, fields]: StreamEntry, deliveries: number): QueueDelivery<T> {
    let data = ''
    let released = 0
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === 'd') data = fields[i + 1] as string
      if (fields[i] === 'a') released = Number(fields[i + 1])
    }
    return { id, item: this.#serializer.deserialize(data) as T, attempts: released + deliveries }
  }
}

/** XREADGROUP replies are `[[stream, entries]]` (RESP2) or `{ stream: entries }` (RESP3 map). */
function readStreamReply(reply: unknown): StreamEntry[] {
  if (reply === null || reply === undefined) return []
  if (Array.isArray(reply))
    return ((reply[0] as [string, StreamEntry[]] | undefined)?.[1] ?? []) as StreamEntry[]
  if (reply instanceof Map) return ([...reply.values()][0] ?? []) as StreamEntry[]
  const values = Object.values(reply as Record<string, StreamEntry[]>)
  return values[0] ?? []
}

/** Creates a Redis Streams {@link WriteQueue}. */
export function createRedisWriteQueue<T = QueuedWrite>(
  options: RedisWriteQueueOptions,
): RedisWriteQueue<T> {
  return new RedisWriteQueue<T>(options)
}
