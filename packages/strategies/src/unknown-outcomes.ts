import { TierUnavailableError, TimeoutError } from '@actor-cache/core'

/**
 * True when a failed tier call may still have been applied: a timeout or a lost connection (the
 * command may be sitting in a stalled server's queue and run later). The tiers report those as
 * `E_TIER_UNAVAILABLE` or `E_TIMEOUT`; anything else (a conflict, bad input, a statement or
 * command the server answered with an error) was refused, and the caches stay as they were.
 */
export function isUnknownOutcome(error: unknown): boolean {
  return error instanceof TierUnavailableError || error instanceof TimeoutError
}

interface Job {
  readonly run: () => Promise<void>
  readonly done: (() => void) | undefined
}

/** First retry delay and the cap of its doubling, in ms. */
const FIRST_DELAY = 50
const MAX_DELAY = 1000

/**
 * Clean-ups that must happen once a tier answers again. A write or delete that timed out has an
 * unknown outcome: a stalled Redis runs it when it resumes, so a cached copy the caller was told
 * nothing about may appear after the call failed. Each job (drop the key from the shared tiers,
 * then tell the other instances) is retried with backoff until it succeeds; since a connection
 * runs its commands in order, a retry that succeeds ran after the late command.
 */
export class UnknownOutcomes {
  readonly #jobs = new Map<string, Job>()
  readonly #report: (id: string, error: unknown) => void
  #timer: NodeJS.Timeout | undefined
  #delay = FIRST_DELAY
  #running: Promise<void> | undefined
  #closed = false

  constructor(report: (id: string, error: unknown) => void) {
    this.#report = report
  }

  /** Clean-ups not done yet. */
  get size(): number {
    return this.#jobs.size
  }

  has(id: string): boolean {
    return this.#jobs.has(id)
  }

  /**
   * Adds a clean-up under `id` (a later one under the same id replaces its work; `done` of the
   * first stays the one called). `done` runs once `run` has succeeded.
   */
  add(id: string, run: () => Promise<void>, done?: () => void): void {
    if (this.#closed) return
    const existing = this.#jobs.get(id)
    this.#jobs.set(id, { run, done: existing === undefined ? done : existing.done })
    this.#delay = FIRST_DELAY
    this.#schedule()
  }

  /** Runs every pending clean-up once now (they stay pending if they fail). */
  settle(): Promise<void> {
    if (this.#running === undefined) {
      this.#running = this.#round().finally(() => {
        this.#running = undefined
      })
    }
    return this.#running
  }

  /** Stops retrying; clean-ups not done are given up (the entries' TTL still bounds them). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    for (const job of this.#jobs.values()) job.done?.()
    this.#jobs.clear()
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed || this.#jobs.size === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.settle().then(() => {
        this.#delay = Math.min(this.#delay * 2, MAX_DELAY)
        this.#schedule()
      })
    }, this.#delay)
    this.#timer.unref?.()
  }

  async #round(): Promise<void> {
    for (const [id, job] of [...this.#jobs]) {
      if (this.#closed) return
      try {
        await job.run()
      } catch (error) {
        this.#report(id, error)
        continue
      }
      // replaced while it ran: the newer work still has to run
      if (this.#jobs.get(id)?.run !== job.run) continue
      this.#jobs.delete(id)
      job.done?.()
    }
  }
}
