import {
  type ClaimOptions,
  ClosedError,
  InvalidOptionError,
  type QueueDelivery,
  type QueuedWrite,
  QueueFullError,
  type QueueStats,
  type Serializer,
  type WriteQueue,
} from '@actor-cache/core'
import { type AnyRedisClient, Commander, connectWithin } from './connection.js'
import { type RedisWriteQueueOptions, resolveQueueOptions } from './queue-options.js'
import { shardCapacity, shardOf, shardStreams, spread } from './queue-shards.js'
import { QueueStream, type RawDelivery } from './queue-stream.js'

/** How long one blocking read of a sharded queue watches one stream before the next (ms). */
const WATCH_SLICE_MS = 50

type Blocking = { client: AnyRedisClient; commander: Commander }

/**
 * A durable {@link WriteQueue} on Redis Streams with a consumer group, on one stream or sharded
 * over several (`shards`).
 *
 * - `enqueue` resolves only after XADD returned (inside one Lua script per stream, all or none,
 *   bounded: `QueueFullError` at capacity). With Redis persistence (AOF) configured, an
 *   acknowledged write survives a crash of the writer and of Redis; without it, a crash of the
 *   writer. A batch over several shards that one of them refuses is withdrawn from the others;
 *   entries of it a consumer already read cannot be, and are delivered.
 * - `claim` first takes over entries another consumer claimed and never acked for
 *   `claimTimeout` ms (XAUTOCLAIM; ids of entries deleted meanwhile are skipped), then reads new
 *   ones (XREADGROUP, blocking on a dedicated connection when asked to wait), from every shard.
 *   A sharded queue blocks on its streams in turn, 50 ms each, so an entry that arrives while it
 *   waits is read at most `(shards - 1) × 50` ms later.
 * - `ack` XACKs and XDELs. Nothing is ever trimmed by length, so a claimed but unacked entry
 *   cannot be dropped.
 * - Delivery is at-least-once and unordered across consumers: consumers must apply versioned
 *   writes (newest version wins). Each key's writes are in one stream, in enqueue order.
 */
export class RedisWriteQueue<T = QueuedWrite> implements WriteQueue<T> {
  readonly #commander: Commander
  readonly #client: AnyRedisClient
  readonly #shards: readonly QueueStream[]
  readonly #consumer: string
  readonly #capacity: number
  readonly #claimTimeout: number
  readonly #serializer: Serializer
  readonly #shardKey: (item: T) => string
  #blocking: Promise<Blocking> | undefined
  #blockingTurn: Promise<unknown> = Promise.resolve()
  /** The shard each claim starts at, rotating so small claims visit every shard. */
  #start = 0
  #closed = false

  constructor(options: RedisWriteQueueOptions<T>) {
    const o = resolveQueueOptions(options)
    this.#commander = o.commander
    this.#client = o.client
    this.#consumer = o.consumer
    this.#capacity = o.capacity
    this.#claimTimeout = o.claimTimeout
    this.#serializer = o.serializer
    this.#shardKey = o.shardKey
    this.#shards = shardStreams(o.prefix, o.name, o.shards).map(
      (stream, i) =>
        new QueueStream(o.commander, stream, o.name, shardCapacity(o.capacity, i, o.shards)),
    )
  }

  /** How long a claimed entry stays with its consumer before another may take it (ms). */
  get claimTimeout(): number {
    return this.#claimTimeout
  }

  /** The stream key (the first shard's, when there are several). */
  get stream(): string {
    return (this.#shards[0] as QueueStream).stream
  }

  /** The stream keys, one per shard. */
  get streams(): readonly string[] {
    return this.#shards.map((s) => s.stream)
  }

  async enqueue(items: readonly T[]): Promise<void> {
    if (this.#closed) throw new ClosedError('write queue')
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
    if (items.length === 0) return
    if (items.length > this.#capacity) throw new QueueFullError(this.#capacity)
    const parts = this.#partition(items)
    const [only, ...more] = parts
    if (only !== undefined && more.length === 0) {
      if ((await this.#shard(only[0]).add(only[1])) === undefined) {
        throw new QueueFullError(this.#capacity)
      }
      return
    }
    await this.#addParts(parts)
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
    await Promise.all(this.#shards.map((s) => s.ensureGroup()))
    const start = this.#start
    this.#start = (start + 1) % this.#shards.length
    const out = await this.#gather(max, start, (s, n) =>
      s.takeOver(this.#consumer, this.#claimTimeout, n),
    )
    if (out.length < max) {
      const wait = out.length === 0 && blockMs > 0 ? Math.ceil(blockMs) : 0
      out.push(...(await this.#readNew(max - out.length, wait, start)))
    }
    return out
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    const byShard = this.#byShard(ids)
    await Promise.all([...byShard].map(([i, own]) => this.#shard(i).ack(own)))
  }

  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    const byShard = this.#byShard(ids)
    await Promise.all([...byShard].map(([i, own]) => this.#shard(i).release(own, this.#consumer)))
  }

  async stats(): Promise<QueueStats> {
    const counts = await Promise.all(this.#shards.map((s) => s.counts()))
    let ready = 0
    let inFlight = 0
    for (const c of counts) {
      ready += c.length - c.inFlight
      inFlight += c.inFlight
    }
    return { ready, inFlight, capacity: this.#capacity }
  }

  async close(): Promise<void> {
    this.#closed = true
    const b = this.#blocking
    this.#blocking = undefined
    // destroy, not close: close() would wait for a blocked read (and forever if Redis hangs).
    // A read cut short leaves its entries pending; claimTimeout hands them to another consumer.
    if (b) (await b.catch(() => undefined))?.client.destroy()
  }

  #shard(i: number): QueueStream {
    return this.#shards[i] as QueueStream
  }

  /** Serialized items by shard, in input order; checked before anything is sent. */
  #partition(items: readonly T[]): Map<number, string[]> {
    const n = this.#shards.length
    const parts = new Map<number, string[]>()
    for (const item of items) {
      const i = n === 1 ? 0 : shardOf(this.#shardKey(item), n)
      const payload = this.#serializer.serialize(item)
      const part = parts.get(i)
      if (part) part.push(payload)
      else parts.set(i, [payload])
    }
    for (const [i, part] of parts) {
      if (part.length > this.#shard(i).capacity) throw new QueueFullError(this.#capacity)
    }
    return parts
  }

  /** Adds a batch that spans shards: all parts, or (as far as no consumer read them) none. */
  async #addParts(parts: Map<number, string[]>): Promise<void> {
    const entries = [...parts]
    const added = await Promise.allSettled(entries.map(([i, p]) => this.#shard(i).add(p)))
    const failure = added.find((r) => r.status === 'rejected')
    const full = added.some((r) => r.status === 'fulfilled' && r.value === undefined)
    if (failure === undefined && !full) return
    await Promise.all(
      entries.map(([i], k) => {
        const r = added[k]
        if (r?.status !== 'fulfilled' || r.value === undefined) return 0
        return this.#shard(i)
          .withdraw(r.value)
          .catch(() => 0)
      }),
    )
    if (failure !== undefined) throw (failure as PromiseRejectedResult).reason
    throw new QueueFullError(this.#capacity)
  }

  /**
   * Up to `max` deliveries from the shards: first an even share from each at once, then, shard
   * by shard, the rest from those that were not asked or gave all they were asked for.
   */
  async #gather(
    max: number,
    start: number,
    fetch: (s: QueueStream, n: number) => Promise<RawDelivery[]>,
  ): Promise<QueueDelivery<T>[]> {
    const n = this.#shards.length
    const counts = spread(max, n, start)
    const order = Array.from({ length: n }, (_, k) => (start + k) % n)
    const first = await Promise.all(
      order.map(async (i) => {
        const asked = counts[i] ?? 0
        return asked > 0 ? this.#deliveries(i, await fetch(this.#shard(i), asked)) : []
      }),
    )
    const out = first.flat()
    for (const [k, i] of order.entries()) {
      if (out.length >= max) break
      const asked = counts[i] ?? 0
      if (asked > 0 && (first[k]?.length ?? 0) < asked) continue // that shard had no more
      out.push(...this.#deliveries(i, await fetch(this.#shard(i), max - out.length)))
    }
    return out
  }

  async #readNew(count: number, blockMs: number, start: number): Promise<QueueDelivery<T>[]> {
    if (this.#shards.length === 1 && blockMs === 0) {
      return this.#deliveries(0, await this.#shard(0).read(this.#consumer, count))
    }
    if (this.#shards.length > 1) {
      const got = await this.#gather(count, start, (s, n) => s.read(this.#consumer, n))
      if (got.length > 0 || blockMs === 0) return got
    }
    // One blocking read at a time on the dedicated connection; each gets its own deadline,
    // counted from when it is sent.
    const turn = this.#blockingTurn.then(async () => {
      const { commander } = await this.#blockingConnection()
      return this.#watch(count, blockMs, start, commander)
    })
    this.#blockingTurn = turn.catch(() => undefined)
    return turn
  }

  /** Blocks on the shards in turn (one slice each) until one has entries or `blockMs` passed. */
  async #watch(
    count: number,
    blockMs: number,
    start: number,
    blocking: Commander,
  ): Promise<QueueDelivery<T>[]> {
    const n = this.#shards.length
    if (n === 1) {
      return this.#deliveries(
        0,
        await this.#shard(0).read(this.#consumer, count, blockMs, blocking),
      )
    }
    const deadline = Date.now() + blockMs
    const slices = Math.ceil(blockMs / WATCH_SLICE_MS) + n
    for (let k = 0; k < slices && !this.#closed; k++) {
      const left = deadline - Date.now()
      if (left <= 0) break
      const i = (start + k) % n
      const slice = Math.min(left, WATCH_SLICE_MS)
      const got = await this.#shard(i).read(this.#consumer, count, slice, blocking)
      if (got.length > 0) return this.#deliveries(i, got)
    }
    return []
  }

  /** The dedicated connection for blocking reads (a blocking read stalls a shared one). */
  #blockingConnection(): Promise<Blocking> {
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

  /** Delivery ids: the stream id with one shard, `<shard>:<stream id>` with several. */
  #deliveries(shard: number, raw: readonly RawDelivery[]): QueueDelivery<T>[] {
    const sharded = this.#shards.length > 1
    return raw.map(({ id, data, attempts }) => ({
      id: sharded ? `${shard}:${id}` : id,
      item: this.#serializer.deserialize(data) as T,
      attempts,
    }))
  }

  /** Delivery ids grouped by shard. @throws {InvalidOptionError} for an id of no shard */
  #byShard(ids: readonly string[]): Map<number, string[]> {
    const byShard = new Map<number, string[]>()
    const n = this.#shards.length
    for (const id of ids) {
      let shard = 0
      let own = id
      if (n > 1) {
        const m = /^(\d{1,2}):(\d+-\d+)$/.exec(String(id))
        shard = Number(m?.[1])
        if (m === null || !(shard < n)) {
          throw new InvalidOptionError('ids', `not a delivery id of this queue: ${String(id)}`)
        }
        own = m[2] as string
      }
      const list = byShard.get(shard)
      if (list) list.push(own)
      else byShard.set(shard, [own])
    }
    return byShard
  }
}

/** Creates a Redis Streams {@link WriteQueue}. */
export function createRedisWriteQueue<T = QueuedWrite>(
  options: RedisWriteQueueOptions<T>,
): RedisWriteQueue<T> {
  return new RedisWriteQueue<T>(options)
}
