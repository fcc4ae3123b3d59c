import type { ChangeRecord } from '@actor-cache/core'
import type { FeedPosition, SourceRead } from './change-source.js'

interface Batch {
  /** Position of the first record. */
  start: number
  /** Feed checkpoint from which the log yields every record of this batch and after. */
  from: string | undefined
  records: ChangeRecord[]
}

interface Waiter {
  from: number
  wake(): void
}

/**
 * The bounded window of records a change source holds for its subscriptions, numbered by
 * position, with the feed checkpoint to re-read the log from for any position in it (the
 * {@link ChangeSource} contract's `head`, `tail`, `read`, `checkpointAt` and `wait`).
 */
export class RelayWindow {
  readonly #capacity: number
  readonly #batches: Batch[] = []
  readonly #waiters = new Set<Waiter>()
  /** Checkpoint for positions at the head and after (no record there yet). */
  #checkpoint: string | undefined
  #head = 0
  #tail = 0
  #held = 0

  constructor(capacity: number, checkpoint?: string) {
    this.#capacity = capacity
    this.#checkpoint = checkpoint
  }

  /** Position after the newest record held. */
  head(): number {
    return this.#head
  }

  /** Position of the oldest record held. */
  tail(): number {
    return this.#batches[0]?.start ?? this.#tail
  }

  /** Records held now. */
  held(): number {
    return this.#held
  }

  /**
   * Appends records at the head. `from` is a feed checkpoint from which the log yields all of
   * them and everything after (the one {@link checkpoint} set last, for a relay's batch the
   * checkpoint it was read from).
   */
  push(records: ChangeRecord[], from: string | undefined): void {
    if (records.length === 0) return
    this.#batches.push({ start: this.#head, from, records })
    this.#head += records.length
    this.#held += records.length
    this.#evict()
    for (const w of this.#waiters) if (this.#head > w.from) w.wake()
  }

  /** Sets the checkpoint of positions from the head on (records pushed later start there). */
  checkpoint(checkpoint: string | undefined): void {
    this.#checkpoint = checkpoint
  }

  /**
   * Drops every record held and skips one position, so every subscription is out of the window
   * and re-reads the log from its own checkpoint: what the source lost is read from the log.
   */
  reset(): void {
    this.#batches.length = 0
    this.#held = 0
    this.#head += 1
    this.#tail = this.#head
    for (const w of this.#waiters) w.wake()
  }

  read(from: number, max: number): SourceRead {
    if (from < this.tail()) return { kind: 'evicted' }
    const out: ChangeRecord[] = []
    for (const b of this.#batches) {
      const end = b.start + b.records.length
      if (end <= from) continue
      const at = Math.max(from, b.start) - b.start
      for (let i = at; i < b.records.length && out.length < max; i++) {
        out.push(b.records[i] as ChangeRecord)
      }
      if (out.length >= max) break
    }
    return { kind: 'records', records: out }
  }

  checkpointAt(p: number): FeedPosition {
    if (p < this.tail()) return { kind: 'evicted' }
    for (const b of this.#batches) {
      if (p < b.start + b.records.length) return { kind: 'checkpoint', checkpoint: b.from }
    }
    return { kind: 'checkpoint', checkpoint: this.#checkpoint }
  }

  wait(from: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.#head > from || signal.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const waiter: Waiter = { from, wake: () => done() }
      const done = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.#waiters.delete(waiter)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
      this.#waiters.add(waiter)
    })
  }

  #evict(): void {
    while (this.#batches.length > 1 && this.#held > this.#capacity) {
      const oldest = this.#batches.shift() as Batch
      this.#held -= oldest.records.length
    }
  }
}
