import type { ChangeLog } from '@actor-cache/core'
import { sleep } from './abortable-sleep.js'
import { RelayWindow } from './relay-window.js'
import { WindowSource } from './window-source.js'

/** Options of a {@link LocalRelay}. */
export interface LocalRelayOptions {
  /** Time between feed reads while nothing new arrives (ms). */
  pollInterval: number
  /** Records per feed read. */
  batchSize: number
  /** Records kept for subscriptions to take (the window). */
  capacity: number
  /** Feed checkpoint to start after; omitted: the feed's end when the relay starts. */
  startCheckpoint?: string
}

/** What a relay did so far. */
export interface RelayStats {
  /** Feed reads. */
  reads: number
  /** Records read from the feed (and fanned out). */
  records: number
  /** Feed reads that failed (retried after a pause). */
  errors: number
  /** Records held for subscriptions now. */
  held: number
  /**
   * Times the source found it had lost records it never held (a shared transport trimmed past
   * it, or Redis restarted): every subscription then re-read the log. Always 0 in-process.
   */
  losses: number
  /** The newest error, until a read succeeds. */
  lastError?: unknown
}

/**
 * An in-process relay: polls the log's ordered feed (`readFeed`, which never skips a change
 * committed late) and holds what it reads in a bounded window that subscriptions read at their
 * own pace. It runs while at least one subscription retains it; a nudge makes it read at once.
 */
export class LocalRelay extends WindowSource {
  readonly #log: ChangeLog
  readonly #options: LocalRelayOptions
  #checkpoint: string | undefined
  #started = false
  #nudge: AbortController | undefined
  #stats: RelayStats = { reads: 0, records: 0, errors: 0, held: 0, losses: 0 }

  constructor(log: ChangeLog, options: LocalRelayOptions) {
    super(new RelayWindow(options.capacity, options.startCheckpoint))
    this.#log = log
    this.#options = options
    if (options.startCheckpoint !== undefined) {
      this.#checkpoint = options.startCheckpoint
      this.#started = true
    }
  }

  nudge(): void {
    this.#nudge?.abort()
  }

  /** Counters and the size of the window. */
  stats(): RelayStats {
    return { ...this.#stats, held: this.window.held() }
  }

  protected async run(signal: AbortSignal, ready: () => void): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      const nudge = new AbortController()
      this.#nudge = nudge
      let full = false
      try {
        full = await this.#readOnce()
        failures = 0
        if (!full) {
          // the feed's end reached: from now on what is read is kept for subscriptions
          this.#started = true
          ready()
        }
      } catch (error) {
        failures++
        this.#stats.errors++
        this.#stats.lastError = error
      }
      if (full || signal.aborted) continue
      const pause = failures === 0 ? this.#options.pollInterval : Math.min(2 ** failures * 50, 2000)
      await sleep(pause, AbortSignal.any([signal, nudge.signal]))
    }
  }

  /** Reads one batch of the feed; true when it was full (more may follow at once). */
  async #readOnce(): Promise<boolean> {
    if (!this.#started && this.#log.feedEnd !== undefined) {
      // nobody can subscribe before the relay reaches the feed's end: start there at once
      this.#checkpoint = await this.#log.feedEnd()
      this.window.checkpoint(this.#checkpoint)
      return false
    }
    const from = this.#checkpoint
    const batch = await this.#log.readFeed(from, this.#options.batchSize)
    this.#stats.reads++
    delete this.#stats.lastError
    this.#checkpoint = batch.checkpoint
    const full = batch.records.length >= this.#options.batchSize
    // Before the first catch-up to the feed's end nobody can subscribe: skip history.
    if (this.#started) {
      this.window.push(batch.records, from)
      this.#stats.records += batch.records.length
    }
    this.window.checkpoint(this.#checkpoint)
    return full
  }
}
