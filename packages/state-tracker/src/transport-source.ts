import type { ChangeReader, ChangeTransport, TransportRead } from '@actor-cache/core'
import { sleep } from './abortable-sleep.js'
import type { RelayStats } from './local-relay.js'
import { RelayWindow } from './relay-window.js'
import { WindowSource } from './window-source.js'

/** Options of a {@link TransportSource}. */
export interface TransportSourceOptions {
  transport: ChangeTransport
  /** Records kept for subscriptions to take (the window). */
  capacity: number
  /** Entries per shard per read. */
  batchSize: number
  /** Longest wait between reads when no publish notification comes (ms). */
  pollInterval: number
  /** The reader group (omitted: a random one, removed on close). */
  group?: string
}

/**
 * A change source fed by a {@link ChangeTransport} (Redis Streams): what a relay in any process
 * published, read from every shard into this process's window.
 *
 * Re-reading the log: a position's checkpoint is a checkpoint the relay had saved before a read
 * that then found every shard at its end. Every record before that checkpoint was published
 * before that read, so it was taken at an earlier position; a subscription that falls out of
 * the window and reads the log's feed from there misses nothing. When the reader finds it lost
 * entries (trimmed before it read them, Redis restarted), the window is dropped and every
 * subscription reads the log from its own checkpoint, taken before the loss.
 */
export class TransportSource extends WindowSource {
  readonly #options: TransportSourceOptions
  #reader: ChangeReader | undefined
  /** Checkpoint the latest read fetched, to be a position's once a later read finds the end. */
  #pending: { checkpoint: string } | undefined
  #mark: string | undefined
  /** Whether the latest read found a relay checkpoint saved. */
  #relayed = false
  #stats: RelayStats = { reads: 0, records: 0, errors: 0, held: 0, losses: 0 }

  constructor(options: TransportSourceOptions) {
    super(new RelayWindow(options.capacity))
    this.#options = options
  }

  /** Wakes the relay, wherever it runs: a change was just appended. */
  nudge(): void {
    this.#options.transport.notifyRelay()
  }

  /** Counters and the size of the window. */
  stats(): RelayStats {
    return { ...this.#stats, held: this.window.held() }
  }

  protected async run(signal: AbortSignal, ready: () => void): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      let more = false
      try {
        if (this.#reader === undefined) await this.#open(signal)
        if (this.#reader === undefined) continue
        more = await this.#readOnce()
        failures = 0
        ready()
      } catch (error) {
        failures++
        this.#stats.errors++
        this.#stats.lastError = error
      }
      if (more || signal.aborted) continue
      if (failures > 0) await sleep(Math.min(2 ** failures * 50, 2000), signal)
      else await (this.#reader as ChangeReader).wait(this.#options.pollInterval, signal)
    }
    const reader = this.#reader
    this.#reader = undefined
    this.#pending = undefined
    // a reader group is per retention: the next one starts from the end, a reset for the window
    if (reader !== undefined) {
      this.window.reset()
      await reader.close().catch(() => {})
    }
  }

  /**
   * Joins the streams once a relay has saved a checkpoint (before that, nothing says from where
   * the relay will publish): the checkpoint first, so it covers what the reader never gets.
   */
  async #open(signal: AbortSignal): Promise<void> {
    let checkpoint = await this.#options.transport.loadCheckpoint()
    while (checkpoint === undefined && !signal.aborted) {
      await sleep(this.#options.pollInterval, signal)
      checkpoint = await this.#options.transport.loadCheckpoint()
    }
    if (signal.aborted) return
    const group = this.#options.group
    this.#reader = await this.#options.transport.openReader(group === undefined ? {} : { group })
    this.#mark = checkpoint
    this.window.checkpoint(checkpoint)
    this.#relayed = true
  }

  /** One read of every shard; true when some shard had more. */
  async #readOnce(): Promise<boolean> {
    const read: TransportRead = await (this.#reader as ChangeReader).read(this.#options.batchSize)
    this.#stats.reads++
    delete this.#stats.lastError
    // No checkpoint: the relay's was lost (Redis restarted). The next relay may start at the
    // feed's end, so once one is saved again, every subscription re-reads the log from its own
    // checkpoint, as after a loss.
    const reappeared = read.checkpoint !== undefined && !this.#relayed
    this.#relayed = read.checkpoint !== undefined
    const lost = read.lost || reappeared
    if (lost) {
      this.#stats.losses++
      this.window.reset()
      this.#pending = undefined
    }
    this.window.push(read.records, this.#mark)
    this.#stats.records += read.records.length
    if (!read.more && !lost && this.#pending !== undefined) {
      // every shard was read to its end after the pending checkpoint was fetched
      this.#mark = this.#pending.checkpoint
      this.window.checkpoint(this.#mark)
    }
    this.#pending =
      lost || read.checkpoint === undefined ? undefined : { checkpoint: read.checkpoint }
    return read.more
  }
}
