import {
  type CacheConfig,
  ForbiddenError,
  InvalidOptionError,
  isActorCacheError,
  jsonSerializer,
  validateKey,
} from '@actor-cache/core'
import { type AuditOptions, type AuditOutcome, Auditor } from './audit.js'
import {
  type AccessPolicy,
  CompiledPolicy,
  OP_BIT,
  type Operation,
  type Principal,
} from './policy.js'
import type { RateLimiter } from './rate-limit.js'

/** Options of `guardCache`. */
export interface GuardOptions {
  /** Roles → namespace globs × operations. Deny by default. */
  policy: AccessPolicy
  /** Access audit; none by default. */
  audit?: AuditOptions
  /** Rate limits per principal and namespace (`createRateLimiter`); none by default. */
  rateLimiter?: RateLimiter
  /**
   * The cache's config, to learn which namespaces `invalidateByEvent` reaches. Without it, an
   * event needs `invalidate` on every namespace (a grant on `*`).
   */
  config?: CacheConfig
  /**
   * With a rate limiter, check written values against the default serializer before the limiter
   * spends a Redis command on them (the check the cache makes by default); turn off when a
   * namespace's codec accepts more than JSON. @default true
   */
  checkValues?: boolean
}

/** The principal of a call made outside any request context: no roles. */
export const NOBODY: Principal = Object.freeze({
  id: '(none)',
  roles: Object.freeze([]) as readonly string[],
})
/** The namespace a refusal names when the call needed a grant on every namespace. */
export const ALL_NAMESPACES = '*'

/**
 * The per-call checks of one guard: the compiled policy, refusals, and the runner that rate limits
 * and audits an allowed call.
 */
export class Checks {
  readonly policy: CompiledPolicy
  readonly auditor: Auditor | undefined
  readonly limiter: RateLimiter | undefined
  readonly config: CacheConfig | undefined
  readonly checkValues: boolean
  /** True when a call must go through {@link run}: audit or rate limit configured. */
  readonly slow: boolean

  constructor(options: GuardOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', 'must be an object { policy, ... }')
    }
    this.policy = new CompiledPolicy(options.policy)
    this.auditor = options.audit === undefined ? undefined : new Auditor(options.audit)
    const limiter = options.rateLimiter
    if (limiter !== undefined && typeof limiter?.consume !== 'function') {
      throw new InvalidOptionError('rateLimiter', 'must come from createRateLimiter')
    }
    this.limiter = limiter
    this.config = options.config
    this.checkValues = options.checkValues !== false
    this.slow = this.auditor !== undefined || this.limiter !== undefined
  }

  deny(
    p: Principal,
    op: Operation,
    method: string,
    namespace: string,
    keys: readonly string[] | undefined,
  ): ForbiddenError {
    const error = new ForbiddenError(
      p.id,
      p.roles,
      op,
      namespace === ALL_NAMESPACES ? {} : { namespace },
    )
    const a = this.auditor
    if (a?.sampledRefusal()) a.record(p, op, method, namespace, keys, Date.now(), 'denied', error)
    return error
  }

  /** Rate limit, then `call`, auditing the outcome. */
  async run<T>(
    p: Principal,
    op: Operation,
    method: string,
    namespace: string,
    keys: readonly string[] | undefined,
    call: () => Promise<T>,
    value?: { value: unknown },
  ): Promise<T> {
    const a = this.auditor
    const started = Date.now()
    if (this.limiter !== undefined) {
      try {
        // a malformed key fails here, before the limiter spends a Redis command on it
        if (keys !== undefined) for (const k of keys) validateKey(k, namespace)
        // and so does a value no tier could store (the check the cache itself makes by default)
        if (value !== undefined && this.checkValues) jsonSerializer.serialize(value.value)
        await this.limiter.consume(p, namespace)
      } catch (error) {
        const limited = isActorCacheError(error, 'E_RATE_LIMITED')
        if (a !== undefined && (limited ? a.sampledRefusal() : a.sampled(op))) {
          a.record(
            p,
            op,
            method,
            namespace,
            keys,
            started,
            limited ? 'rate_limited' : 'error',
            error,
          )
        }
        throw error
      }
    }
    if (a === undefined || !a.sampled(op)) return call()
    let outcome: AuditOutcome = 'ok'
    let failure: unknown
    try {
      return await call()
    } catch (error) {
      outcome = 'error'
      failure = error
      throw error
    } finally {
      a.record(p, op, method, namespace, keys, started, outcome, failure, value)
    }
  }
}

/** The audited keys of a one-key call (the cache validates the key). */
export function keyList(key: unknown): readonly string[] {
  return [key as string]
}

/** The audited keys of a many-key call, when they are a list. */
export function keysOf(keys: unknown): readonly string[] | undefined {
  return Array.isArray(keys) ? keys : undefined
}

/** Checks `op` on every namespace (a grant on `*`), then runs `call` through limiter and audit. */
export function guardEverywhere<T>(
  checks: Checks,
  p: Principal,
  op: Operation,
  method: string,
  call: () => Promise<T>,
): Promise<T> {
  if ((checks.policy.everywhere(p.roles) & OP_BIT[op]) === 0) {
    return Promise.reject(checks.deny(p, op, method, ALL_NAMESPACES, undefined))
  }
  if (!checks.slow) return call()
  return checks.run(p, op, method, ALL_NAMESPACES, undefined, call)
}

/** Checks `op` on each of `namespaces`, then runs `call` through limiter and audit. */
export function guardNamespaces<T>(
  checks: Checks,
  p: Principal,
  op: Operation,
  method: string,
  namespaces: readonly string[],
  keys: readonly string[] | undefined,
  call: () => Promise<T>,
): Promise<T> {
  for (const ns of namespaces) {
    if ((checks.policy.mask(p.roles, ns) & OP_BIT[op]) === 0) {
      return Promise.reject(checks.deny(p, op, method, ns, keys))
    }
  }
  if (!checks.slow) return call()
  return checks.run(p, op, method, namespaces.join(','), keys, call)
}
