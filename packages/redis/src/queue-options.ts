import { randomUUID } from 'node:crypto'
import {
  InvalidOptionError,
  jsonSerializer,
  type QueuedWrite,
  type Serializer,
} from '@actor-cache/core'
import type { AnyRedisClient, Commander, RedisComponentOptions } from './connection.js'
import { resolveComponentOptions } from './connection.js'
import { checkShardedName, checkShards, isIntIn as int, writeShardKey } from './queue-shards.js'

/** Options of {@link createRedisWriteQueue}. */
export interface RedisWriteQueueOptions<T = QueuedWrite> extends RedisComponentOptions {
  /**
   * Queue name; the consumer group of every stream is `<name>`. With one shard the stream is
   * `<prefix>:wq:{<name>}`; with more, `<prefix>:wq:{<name>#<i>.<j>}` (see `shards`).
   */
  name: string
  /** This consumer's name, unique per process. @default a random UUID */
  consumer?: string
  /**
   * Most entries (ready + claimed) the queue holds; with several shards each holds its share
   * (`capacity / shards`, rounded), so a batch is refused when its shard is full. @default 100_000
   */
  capacity?: number
  /**
   * Claimed entries not acked within this many ms are taken over by other consumers (the
   * claimer probably died). Keep it well above the time a batch takes to persist. @default 30_000
   */
  claimTimeout?: number
  /** Serializer of queued items. @default jsonSerializer */
  serializer?: Serializer
  /**
   * Streams the queue is spread over, 1 to 64. Their hash tags spread evenly over the cluster's
   * 16384 slots, so on a Redis Cluster the queue's writes and reads spread over the masters; a
   * write goes to the stream its shard key hashes to, so all writes of one key stay in one
   * stream, in order. Every instance sharing the queue must use the same value, and the value
   * may change only while the queue is empty (a key's older writes would sit in another stream).
   * @default 1 (the single stream `<prefix>:wq:{<name>}`)
   */
  shards?: number
  /**
   * What a write is sharded by; only used with `shards` > 1.
   * @default the item's `namespace` and `key` (a typed error for items without them)
   */
  shardKey?: (item: T) => string
}

/** The options of a write queue, checked, with their defaults. */
export interface ResolvedQueueOptions<T> {
  commander: Commander
  client: AnyRedisClient
  prefix: string
  name: string
  consumer: string
  capacity: number
  claimTimeout: number
  serializer: Serializer
  shards: number
  shardKey: (item: T) => string
}

/**
 * Checks the options of a write queue (nothing is sent).
 * @throws {InvalidOptionError} naming the first bad option and its value
 */
export function resolveQueueOptions<T>(
  options: RedisWriteQueueOptions<T>,
): ResolvedQueueOptions<T> {
  const { commander, client, prefix } = resolveComponentOptions(options)
  const name = checkShardedName(options.name)
  const shards = checkShards(options.shards)
  const capacity = options.capacity ?? 100_000
  if (!int(capacity, shards)) {
    const least = shards > 1 ? `, at least shards (${shards})` : ''
    throw new InvalidOptionError(
      'capacity',
      `must be a positive integer${least}, got ${String(options.capacity)}`,
    )
  }
  const claimTimeout = options.claimTimeout ?? 30_000
  if (!int(claimTimeout, 1)) {
    throw new InvalidOptionError(
      'claimTimeout',
      `must be a positive integer number of ms, got ${String(options.claimTimeout)}`,
    )
  }
  if (options.shardKey !== undefined && typeof options.shardKey !== 'function') {
    throw new InvalidOptionError('shardKey', 'must be a function of an item')
  }
  return {
    commander,
    client,
    prefix,
    name,
    consumer: options.consumer ?? randomUUID(),
    capacity,
    claimTimeout,
    serializer: options.serializer ?? jsonSerializer,
    shards,
    shardKey: options.shardKey ?? writeShardKey,
  }
}
