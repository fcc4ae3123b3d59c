interface Deadline {
  at: number
  ms: number
  reject(error: unknown): void
  settled: boolean
}

/** What a command that outlived its deadline fails with (before the commander maps it). */
class CommandTimeout extends Error {
  constructor(ms: number) {
    super(`no reply within ${ms} ms`)
    this.name = 'CommandTimeout'
  }
}

/** Idle watchdog ticks after which the watchdog stops (it is unref'd: it keeps nothing open). */
const IDLE_TICKS = 10

/**
 * @internal The deadlines of a commander's commands. node-redis's own command timeout does not
 * cover a command already written to a server that stopped answering, so the bound is ours: one
 * watchdog timer for all commands in flight (cheaper than a timer per command); a late reply is
 * ignored.
 */
export class CommandDeadlines {
  readonly #timeout: number
  readonly #inFlight = new Set<Deadline>()
  #watchdog: NodeJS.Timeout | undefined
  /** Watchdog ticks in a row that found nothing in flight. */
  #idleTicks = 0

  /** `timeout`: the commander's deadline, which sets the watchdog's tick. */
  constructor(timeout: number) {
    this.#timeout = timeout
  }

  /** `pending`, or a `CommandTimeout` once `timeout` ms have passed without it settling. */
  bound<T>(pending: Promise<T>, timeout: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Deadline = { at: Date.now() + timeout, ms: timeout, reject, settled: false }
      this.#inFlight.add(waiter)
      this.#watch()
      pending.then(
        (value) => {
          if (waiter.settled) return
          waiter.settled = true
          this.#inFlight.delete(waiter)
          resolve(value)
        },
        (error: unknown) => {
          if (waiter.settled) return
          waiter.settled = true
          this.#inFlight.delete(waiter)
          reject(error)
        },
      )
    })
  }

  /**
   * Starts the watchdog unless it runs. It stops only after {@link IDLE_TICKS} idle ticks in a
   * row: one command at a time would otherwise create and clear a timer per command.
   */
  #watch(): void {
    this.#idleTicks = 0
    if (this.#watchdog) return
    const tick = Math.max(5, Math.min(100, Math.floor(this.#timeout / 10)))
    this.#watchdog = setInterval(() => {
      const now = Date.now()
      for (const w of this.#inFlight) {
        if (w.at > now) continue
        w.settled = true
        this.#inFlight.delete(w)
        w.reject(new CommandTimeout(w.ms))
      }
      if (this.#inFlight.size === 0 && ++this.#idleTicks >= IDLE_TICKS) {
        clearInterval(this.#watchdog)
        this.#watchdog = undefined
      }
    }, tick)
    this.#watchdog.unref()
  }
}
