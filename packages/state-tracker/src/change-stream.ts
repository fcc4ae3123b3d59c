import {
  type ChangeLog,
  type ChangeTransport,
  ClosedError,
  InvalidOptionError,
} from '@actor-cache/core'
import type { ChangeSource } from './change-source.js'
import { ChangeSubscription } from './change-subscription.js'
import { LocalRelay, type RelayStats } from './local-relay.js'
import {
  type ChangeFilter,
  checkCount,
  checkSubscription,
  type SubscribeFrom,
  type SubscribeOptions,
} from './stream-options.js'
import { TransportSource } from './transport-source.js'

/** Options of {@link createChangeStream}. */
export interface ChangeStreamOptions {
  /**
   * The change log to stream (`createPrismaChangeLog` over PostgreSQL or PGlite, or core's
   * `createMemoryChangeLog`). The caller owns it: close the stream before closing the log.
   */
  log: ChangeLog
  /** Time between reads of the log's feed while nothing new arrives (ms). @default 50 */
  pollInterval?: number
  /** Records per read of the feed, of a catch-up page and of a step of a subscription. @default 500 */
  batchSize?: number
  /**
   * Changes the relay keeps for subscriptions to take: the most a subscription may fall behind
   * before it reads the log itself. @default 10000
   */
  capacity?: number
  /**
   * Takes live changes from a transport shared by processes (`createRedisChangeTransport`)
   * instead of reading the log in this process: a {@link ChangeRelay} (in this process or
   * another) publishes the log there. The caller owns it: close the stream before it.
   * Omitted: embedded mode, an in-process relay reads the log. Subscriptions start once a relay
   * has saved its first checkpoint there (a relay that finds none starts at the log's end).
   */
  transport?: ChangeTransport
  /**
   * Name of this stream's reader group on the transport. Omitted: a random one, removed when
   * the stream stops reading.
   */
  group?: string
}

/** Counters of a stream. */
export interface ChangeStreamStats {
  /** Subscriptions open. */
  subscriptions: number
  /** Counters of where live changes come from: the in-process relay, or the transport's reader. */
  relay: RelayStats
}

/**
 * Real-time change streams over a change log, in one process (embedded mode): an in-process
 * relay reads the log's ordered feed and fans out to subscriptions, each of which catches up
 * from the log first and then follows live, with every entity's versions in order, once each.
 * Several instances may each run their own stream over one PostgreSQL log.
 */
export class ChangeStream {
  readonly #log: ChangeLog
  readonly #relay: ChangeSource & { close(): Promise<void>; stats(): RelayStats }
  readonly #batchSize: number
  readonly #capacity: number
  readonly #subscriptions = new Set<ChangeSubscription>()
  #closed = false

  constructor(options: ChangeStreamOptions) {
    const log = options?.log as Partial<ChangeLog> | undefined
    const methods = ['query', 'history', 'head', 'readFeed'] as const
    if (
      typeof log !== 'object' ||
      log === null ||
      methods.some((m) => typeof log[m] !== 'function')
    ) {
      throw new InvalidOptionError('log', `must be a ChangeLog (with ${methods.join(', ')})`)
    }
    this.#log = log as ChangeLog
    const pollInterval = checkCount('pollInterval', options.pollInterval, 50, 60_000)
    this.#batchSize = checkCount('batchSize', options.batchSize, 500, 10_000)
    this.#capacity = checkCount('capacity', options.capacity, 10_000, 10_000_000)
    if (this.#capacity < this.#batchSize) {
      throw new InvalidOptionError(
        'capacity',
        `must be at least batchSize (${this.#batchSize}), got ${this.#capacity}`,
      )
    }
    const transport = options.transport as Partial<ChangeTransport> | undefined
    if (transport !== undefined && typeof transport?.openReader !== 'function') {
      throw new InvalidOptionError('transport', 'must be a ChangeTransport (with openReader)')
    }
    const group = options.group
    if (group !== undefined && (typeof group !== 'string' || !/^[\w.:-]{1,128}$/.test(group))) {
      throw new InvalidOptionError(
        'group',
        `must be 1 to 128 letters, digits or . _ : -, got ${JSON.stringify(group)}`,
      )
    }
    if (group !== undefined && transport === undefined) {
      throw new InvalidOptionError('group', 'needs a transport (reader groups live there)')
    }
    const sizes = { pollInterval, batchSize: this.#batchSize, capacity: this.#capacity }
    this.#relay =
      transport === undefined
        ? new LocalRelay(this.#log, sizes)
        : new TransportSource({
            ...sizes,
            transport: transport as ChangeTransport,
            ...(group === undefined ? {} : { group }),
          })
  }

  /**
   * Subscribes to the changes of `filter` from `from`. Input is checked at once, before any
   * I/O; reading starts with the first `next()`. Close the subscription (or `break` out of its
   * `for await`) when done.
   * @throws {InvalidOptionError} for a malformed filter, start or option
   * @throws {InvalidKeyError} for a malformed entity type or id
   * @throws {ClosedError} once the stream is closed
   */
  subscribe<T = unknown>(
    filter: ChangeFilter,
    from: SubscribeFrom,
    options?: SubscribeOptions,
  ): ChangeSubscription<T> {
    const checked = checkSubscription(filter, from, options, this.#capacity)
    if (this.#closed) throw new ClosedError('change stream')
    const subscription: ChangeSubscription<T> = new ChangeSubscription<T>(
      {
        log: this.#log,
        source: this.#relay,
        pageSize: this.#batchSize,
        onClose: () => this.#subscriptions.delete(subscription as ChangeSubscription),
      },
      checked,
    )
    this.#subscriptions.add(subscription as ChangeSubscription)
    return subscription
  }

  /**
   * Makes the relay read the log now (a change was just appended in this process): the
   * in-process one, or through the transport the one publishing, wherever it runs.
   */
  nudge(): void {
    if (!this.#closed) this.#relay.nudge()
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** Open subscriptions and the relay's counters. */
  stats(): ChangeStreamStats {
    return { subscriptions: this.#subscriptions.size, relay: this.#relay.stats() }
  }

  /** Closes every subscription and stops the relay. The log stays open (the caller owns it). */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.all([...this.#subscriptions].map((s) => s.close()))
    await this.#relay.close()
  }
}

/** Creates a {@link ChangeStream} over a change log. */
export function createChangeStream(options: ChangeStreamOptions): ChangeStream {
  return new ChangeStream(options)
}
