import { TierUnavailableError } from '@actor-cache/core'

/** State of a {@link CircuitBreaker}. */
export type BreakerState = 'closed' | 'open' | 'half-open'

/** Options of {@link CircuitBreaker}. */
export interface BreakerOptions {
  /** Consecutive failures that open the circuit. @default 5 */
  threshold?: number
  /** How long the circuit stays open before letting one trial call through, in ms. @default 1000 */
  resetTimeout?: number
}

/**
 * Fails calls fast while a tier is down. After `threshold` consecutive failures the circuit opens
 * and calls fail at once with `TierUnavailableError`; after `resetTimeout` one trial call is let
 * through (half-open): success closes the circuit, failure opens it again.
 */
export class CircuitBreaker {
  readonly #threshold: number
  readonly #resetTimeout: number
  readonly #tier: string
  #failures = 0
  #openedAt = 0
  #trial = false

  constructor(tier: string, options: BreakerOptions = {}) {
    this.#tier = tier
    this.#threshold = options.threshold ?? 5
    this.#resetTimeout = options.resetTimeout ?? 1000
  }

  get state(): BreakerState {
    if (this.#openedAt === 0) return 'closed'
    return Date.now() - this.#openedAt >= this.#resetTimeout ? 'half-open' : 'open'
  }

  /** Throws when a call may not proceed now; otherwise the caller must report the outcome. */
  enter(): void {
    if (this.#openedAt === 0) return
    if (Date.now() - this.#openedAt < this.#resetTimeout || this.#trial) {
      throw new TierUnavailableError(
        `${this.#tier} circuit breaker is open after ${this.#failures} consecutive failures`,
        {
          tier: this.#tier,
        },
      )
    }
    this.#trial = true
  }

  success(): void {
    this.#failures = 0
    this.#openedAt = 0
    this.#trial = false
  }

  failure(): void {
    this.#failures++
    if (this.#trial || this.#failures >= this.#threshold) this.#openedAt = Date.now()
    this.#trial = false
  }
}
