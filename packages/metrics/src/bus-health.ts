import type { InvalidationListener } from '@actor-cache/core'

/**
 * What a health check reads from an invalidation bus: the `InvalidationBus` port of
 * `@actor-cache/core` fits, and a `ping()` when the bus has one (`RedisBus` of
 * `@actor-cache/redis` does: a probe through Redis and back to its own subscription).
 */
export interface BusSource {
  subscribe(listener: InvalidationListener): () => void
  /** Resolves once the bus works end to end; rejects when it does not. */
  ping?(): Promise<void>
}

/** The last time the bus told its listeners that messages may have been lost. */
export interface BusReset {
  /** The bus's reason (`resubscribed`, `sequence gap from <id>`, `not subscribed: ...`). */
  reason: string
  /** When it was heard (the health check's clock, epoch ms). */
  at: number
}

/**
 * Listens to an invalidation bus the way a cache does, to hear its resets (a reconnection, a
 * sequence gap, a failed subscription: the caches dropped what the bus coordinates), and pings it
 * when it can be pinged. `close()` removes the listener; the bus stays its owner's.
 */
export class BusWatch {
  readonly #bus: BusSource
  readonly #now: () => number
  readonly #unsubscribe: () => void
  #lastReset: BusReset | undefined

  constructor(bus: BusSource, now: () => number) {
    this.#bus = bus
    this.#now = now
    // a cache's listener already subscribed it; otherwise this starts the subscription
    this.#unsubscribe = bus.subscribe({
      onInvalidate: () => {},
      onReset: (reason) => {
        this.#lastReset = { reason, at: this.#now() }
      },
    })
  }

  /** The last reset heard, if any. */
  get lastReset(): BusReset | undefined {
    return this.#lastReset
  }

  /** Whether the bus has a probe of its own. */
  get probed(): boolean {
    return typeof this.#bus.ping === 'function'
  }

  /**
   * Pings the bus (when it can be pinged) and says why it is degraded: a reset within `window`
   * ms. Rejects when the ping fails.
   */
  async check(window: number): Promise<string | undefined> {
    if (this.#bus.ping !== undefined) await this.#bus.ping()
    const reset = this.#lastReset
    if (reset === undefined || reset.at < this.#now() - window) return undefined
    return `reset ${this.#now() - reset.at} ms ago (${reset.reason}): L1 copies the bus coordinates were dropped, messages may have been lost`
  }

  /** Removes its listener from the bus. Idempotent. */
  close(): void {
    this.#unsubscribe()
  }
}
