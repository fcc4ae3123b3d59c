import { InvalidOptionError, RateLimitedError, TierUnavailableError } from '@actor-cache/core'
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible'
import type { Principal } from './policy.js'

/** A budget: `points` calls per `duration` seconds. */
export interface RateBudget {
  /** Calls allowed per window; a positive integer. */
  points: number
  /** Window length in seconds; a positive integer. */
  duration: number
}

/** Options of {@link createRateLimiter}. */
export interface RateLimitOptions extends RateBudget {
  /**
   * A connected node-redis (v4+) client: counters live in Redis and are shared by every instance.
   * While it is not ready (or a call exceeds `timeout`), an in-memory limiter with the same
   * budget takes over in each process. Without it, limits are per process. You close it.
   */
  redis?: unknown
  /** Budgets of namespaces that differ from the default, by namespace name. */
  namespaces?: Readonly<Record<string, RateBudget>>
  /** Prefix of the counter keys in Redis. @default 'actor-cache:rl' */
  keyPrefix?: string
  /** Longest wait for Redis before the in-memory limiter answers, in ms. @default 250 */
  timeout?: number
}

/** Counts calls per principal and namespace; the guard calls it before each call it lets through. */
export interface RateLimiter {
  /**
   * Takes one point from `principal`'s budget on `namespace`.
   * @throws {RateLimitedError} with `retryAfterMs` when the budget is spent
   */
  consume(principal: Principal, namespace: string): Promise<void>
}

function budget(b: RateBudget, where: string): RateBudget {
  if (typeof b !== 'object' || b === null) {
    throw new InvalidOptionError(where, 'must be an object { points, duration }')
  }
  for (const f of ['points', 'duration'] as const) {
    const v = b[f]
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new InvalidOptionError(`${where}.${f}`, `must be a positive integer, got ${String(v)}`)
    }
  }
  return { points: b.points, duration: b.duration }
}

class Limiter implements RateLimiter {
  readonly #default: Pair
  readonly #byNamespace: ReadonlyMap<string, Pair>
  readonly #timeout: number

  constructor(options: RateLimitOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('rateLimit', 'must be an object { points, duration, ... }')
    }
    const base = budget(options, 'rateLimit')
    const prefix = options.keyPrefix ?? 'actor-cache:rl'
    if (typeof prefix !== 'string' || prefix.length === 0) {
      throw new InvalidOptionError('rateLimit.keyPrefix', 'must be a non-empty string')
    }
    const timeout = options.timeout ?? 250
    if (!Number.isFinite(timeout) || timeout <= 0) {
      throw new InvalidOptionError(
        'rateLimit.timeout',
        `must be a positive number, got ${String(timeout)}`,
      )
    }
    this.#timeout = timeout
    const redis = options.redis
    if (
      redis !== undefined &&
      (typeof redis !== 'object' || redis === null || !('isReady' in redis))
    ) {
      throw new InvalidOptionError('rateLimit.redis', 'must be a node-redis client (v4 or later)')
    }
    const pair = (b: RateBudget, keyPrefix: string): Pair => {
      const memory = new RateLimiterMemory({ ...b, keyPrefix })
      if (redis === undefined) return { primary: memory, insurance: undefined }
      return {
        primary: new RateLimiterRedis({
          ...b,
          keyPrefix,
          storeClient: redis,
          useRedisPackage: true,
          // while the client is reconnecting, answer at once from memory instead of queueing
          rejectIfRedisNotReady: true,
        }),
        insurance: memory,
      }
    }
    this.#default = pair(base, prefix)
    const byNamespace = new Map<string, Pair>()
    for (const [ns, b] of Object.entries(options.namespaces ?? {})) {
      byNamespace.set(ns, pair(budget(b, `rateLimit.namespaces.${ns}`), `${prefix}:${ns}`))
    }
    this.#byNamespace = byNamespace
  }

  async consume(principal: Principal, namespace: string): Promise<void> {
    const pair = this.#byNamespace.get(namespace) ?? this.#default
    const key = JSON.stringify([principal.id, namespace])
    try {
      if (pair.insurance === undefined) await pair.primary.consume(key)
      else await this.#insured(pair.primary, pair.insurance, key)
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        throw new RateLimitedError(principal.id, Math.max(1, Math.ceil(error.msBeforeNext)), {
          namespace,
        })
      }
      throw new TierUnavailableError('rate limiter failed', { namespace, cause: error })
    }
  }

  /** Redis, bounded by the timeout; on any failure other than a refusal, the in-memory limiter. */
  async #insured(
    primary: RateLimiterAbstract,
    insurance: RateLimiterAbstract,
    key: string,
  ): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, this.#timeout, 'timeout')
    })
    try {
      const result = await Promise.race([primary.consume(key), late])
      if (result !== 'timeout') return
    } catch (error) {
      if (error instanceof RateLimiterRes) throw error
    } finally {
      clearTimeout(timer)
    }
    await insurance.consume(key)
  }
}

interface Pair {
  primary: RateLimiterAbstract
  insurance: RateLimiterAbstract | undefined
}

/**
 * A rate limiter per principal and namespace on rate-limiter-flexible: Redis-backed when given a
 * client, with an in-memory limiter taking over while Redis is down.
 * @throws {InvalidOptionError} for a bad budget, before any I/O
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  return new Limiter(options)
}
