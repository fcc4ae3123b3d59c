import {
  type ChangeReaderOptions,
  type ChangeRecord,
  type ChangeTransport,
  ClosedError,
  type RelayLease,
  type TrimResult,
} from '@actor-cache/core'
import { ChangeLease, checkLease, checkTtl } from './change-lease.js'
import { ChangeNotifier, checkWait, destroyQuietly, Signal } from './change-notify.js'
import { partition, publishParts } from './change-publish.js'
import { checkGroup, RedisChangeReader } from './change-reader.js'
import {
  type ChangeKeys,
  type RedisChangeTransportOptions,
  resolveChangeOptions,
} from './change-transport-options.js'
import { trimShard } from './change-trim.js'
import { type AnyRedisClient, type Commander, connectWithin } from './connection.js'

/**
 * The {@link ChangeTransport} of a change-stream relay on Redis Streams.
 *
 * - **Lease**: `<prefix>:cs:{<prefix>:<name>}:lease` (`SET NX PX` with a random token) and the
 *   relay hash `…:relay` (latest `epoch`, current `holder`, `owner`, checkpoint `cp`) share one
 *   hash slot; acquire, renew, release and checkpoint saves are each one script. An epoch is above
 *   every earlier one and at least the server's clock in ms, so it keeps growing after Redis lost
 *   its data.
 * - **Publish**: each record goes to the shard of its entity (`shardOf(entityType \0 entityId)`),
 *   one script per shard and chunk (≤ 500 records, ~1 MB): refused with `LeaseLostError` when a
 *   newer epoch published to the shard (its meta hash's `fence`), else XADD (`MAXLEN ~
 *   maxLength`) with the shard's run id and entry number. Then a PUBLISH wakes readers.
 * - **Readers**: a consumer group per reader on every shard, read and acknowledged in one script
 *   per shard (nothing stays pending) together with the shard's meta hash, so a gap in the entry
 *   numbers, a changed run id or a lost group shows as `lost`.
 * - **Trim**: groups idle for `readerTimeout` go; entries every group read go.
 */
export class RedisChangeTransport implements ChangeTransport {
  /** Number of shards (streams). */
  readonly shards: number
  /** The stream keys, one per shard. */
  readonly streams: readonly string[]
  readonly #commander: Commander
  readonly #client: AnyRedisClient
  readonly #ownsClient: boolean
  readonly #keys: ChangeKeys
  readonly #maxLength: number
  readonly #readerTimeout: number
  readonly #lease: ChangeLease
  readonly #notifier: ChangeNotifier
  readonly #readers = new Set<RedisChangeReader>()
  #connected: Promise<void> | undefined
  #closed = false

  /** @throws {InvalidOptionError} naming the first bad option (nothing is sent) */
  constructor(options: RedisChangeTransportOptions) {
    const o = resolveChangeOptions(options)
    this.#commander = o.commander
    this.#client = o.client
    this.#ownsClient = o.ownsClient
    this.#keys = o.keys
    this.shards = o.shards
    this.streams = o.keys.streams
    this.#maxLength = o.maxLength
    this.#readerTimeout = o.readerTimeout
    this.#lease = new ChangeLease(o.commander, o.keys)
    this.#notifier = new ChangeNotifier(o.commander, o.client, o.keys)
    // a client passed in is connected by its owner
    if (!o.ownsClient) this.#connected = Promise.resolve()
  }

  /** Wake PUBLISHes of `notifyRelay` and publish notifications that failed (never thrown). */
  get notifyFailures(): number {
    return this.#notifier.notifyFailures
  }

  async acquireRelay(owner: string, ttl: number): Promise<RelayLease | undefined> {
    ChangeLease.check(owner, ttl)
    await this.#ready()
    return this.#lease.acquire(owner, ttl)
  }

  async renewRelay(lease: RelayLease, ttl: number): Promise<boolean> {
    checkLease(lease)
    checkTtl(ttl)
    await this.#ready()
    return this.#lease.renew(lease, ttl)
  }

  async releaseRelay(lease: RelayLease): Promise<void> {
    checkLease(lease)
    await this.#ready()
    await this.#lease.release(lease)
  }

  async loadCheckpoint(): Promise<string | undefined> {
    await this.#ready()
    return this.#lease.load()
  }

  /**
   * @throws {LeaseLostError} when a newer holder published to one of the records' shards (the
   * other shards may have taken their records)
   * @throws {InvalidOptionError} for a record without string `entityType` / `entityId` or a
   * positive integer `version`, before anything is sent
   */
  async publish(lease: RelayLease, records: readonly ChangeRecord[]): Promise<void> {
    checkLease(lease)
    const parts = partition(records, this.shards)
    await this.#ready()
    if (parts.size === 0) return
    try {
      await publishParts(this.#commander, this.#keys, this.#maxLength, lease, parts)
    } finally {
      // also after a refusal or a failure: other shards may have taken their records. Not
      // awaited: the notice goes out behind the scripts, and the relay's next command (its
      // checkpoint) need not wait for its reply; a failure is counted, never thrown
      void this.#notifier.published()
    }
  }

  async saveCheckpoint(lease: RelayLease, checkpoint: string): Promise<void> {
    checkLease(lease)
    ChangeLease.checkCheckpoint(checkpoint)
    await this.#ready()
    await this.#lease.save(lease, checkpoint)
  }

  async trim(): Promise<TrimResult> {
    await this.#ready()
    const results = await Promise.all(
      this.#keys.streams.map((s, i) =>
        trimShard(this.#commander, s, this.#keys.seen[i] as string, this.#readerTimeout),
      ),
    )
    return results.reduce((a, b) => ({
      trimmed: a.trimmed + b.trimmed,
      expiredReaders: a.expiredReaders + b.expiredReaders,
    }))
  }

  /** Best effort: calls in one turn of the event loop send one PUBLISH; failures are counted. */
  notifyRelay(): void {
    if (this.#closed) return
    this.#ready().then(
      () => this.#notifier.notify(),
      () => this.#notifier.notifyFailures++,
    )
  }

  /**
   * Resolves on a `notifyRelay` of any process, after `ms`, or on `signal` (a wake since the
   * previous wait returned resolves it at once). Subscribes on first use; while the subscription
   * cannot be made, it waits out `ms`.
   */
  async waitForChanges(ms: number, signal: AbortSignal): Promise<void> {
    checkWait(ms, signal)
    if (this.#closed) throw new ClosedError('change transport')
    const started = Date.now()
    try {
      await this.#ready()
      await this.#notifier.subscribe()
    } catch (error) {
      if (this.#closed) throw error
      // Redis is unreachable: the relay polls its feed after the wait anyway.
    }
    await this.#notifier.wake.wait(ms - (Date.now() - started), signal)
  }

  /**
   * Joins every shard at its end as a new reader group (a random name, destroyed on close) or as
   * the named group (it continues where that group stands: entries published while no reader of
   * it read are delivered; its first read takes its baseline from the first entry).
   * @throws {InvalidOptionError} for a group name that is not 1-128 letters, digits, `_.:-`
   */
  async openReader(options: ChangeReaderOptions = {}): Promise<RedisChangeReader> {
    const group = checkGroup((options as ChangeReaderOptions | null)?.group)
    await this.#ready()
    await this.#notifier.subscribe()
    const signal = new Signal()
    const reader = new RedisChangeReader(
      {
        commander: this.#commander,
        keys: this.#keys,
        signal,
        checkpoint: () => this.#lease.load(),
        ready: () => this.#ready(),
        closed: (r) => {
          this.#readers.delete(r)
          this.#notifier.readers.delete(signal)
        },
      },
      group,
    )
    this.#notifier.readers.add(signal)
    this.#readers.add(reader)
    try {
      await reader.open()
    } catch (error) {
      await reader.close()
      throw error
    }
    return reader
  }

  /**
   * Closes the readers it opened (random groups are destroyed), its subscriber connection, and
   * the connection it made from `url`; a client passed in stays open. Idempotent; other calls
   * then throw `ClosedError`.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([...this.#readers].map((r) => r.close()))
    this.#notifier.close()
    if (this.#ownsClient && this.#connected) {
      const connected = await this.#connected.then(
        () => true,
        () => false,
      )
      if (connected) {
        await this.#commander
          .within(() => this.#client.close(), 'QUIT')
          .catch(() => destroyQuietly(this.#client))
      }
    }
  }

  /** Connects the `url` client on first use; rejects with `ClosedError` once closed. */
  #ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('change transport'))
    this.#connected ??= connectWithin(
      this.#client,
      this.#commander.timeout,
      'cannot connect to Redis',
    ).catch((error: unknown) => {
      this.#connected = undefined
      throw error
    })
    return this.#connected
  }
}

/**
 * Creates the Redis Streams {@link ChangeTransport} of a change-stream relay.
 * @throws {InvalidOptionError} naming the first bad option (nothing is sent)
 * @example
 * const transport = createRedisChangeTransport({ client, shards: 4 })
 * const lease = await transport.acquireRelay('relay-1', 10_000)
 * if (lease) await transport.publish(lease, records)
 */
export function createRedisChangeTransport(
  options: RedisChangeTransportOptions,
): RedisChangeTransport {
  return new RedisChangeTransport(options)
}
