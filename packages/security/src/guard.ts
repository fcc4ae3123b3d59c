import {
  type CacheConfig,
  type CacheEntry,
  ForbiddenError,
  InvalidOptionError,
  isActorCacheError,
  jsonSerializer,
  type SetResult,
  validateKey,
} from '@actor-cache/core'
import { type AuditOptions, type AuditOutcome, Auditor } from './audit.js'
import { currentPrincipal } from './context.js'
import {
  type AccessPolicy,
  CompiledPolicy,
  checkPrincipal,
  OP_BIT,
  type Operation,
  type Principal,
} from './policy.js'
import type { RateLimiter } from './rate-limit.js'

/** A loader as the guard passes it on (the cache gives it its context). */
export type GuardLoader<V> = (key: string, context: never) => V | undefined | Promise<V | undefined>
/** A loader that always finds a value. */
export type GuardValueLoader<V> = (key: string, context: never) => V | Promise<V>
/** A batch loader as the guard passes it on. */
export type GuardBatchLoader<V> = (
  keys: readonly string[],
  context: never,
) =>
  | readonly (V | undefined)[]
  | ReadonlyMap<string, V>
  | Promise<readonly (V | undefined)[] | ReadonlyMap<string, V>>

/** What the guard needs of a namespace: the public methods of a `TieredNamespace`. */
export interface GuardableNamespace<V = unknown> {
  readonly name: string
  get(key: string): Promise<V | undefined>
  getOrSet(key: string, loader?: GuardLoader<V>, options?: object): Promise<V | undefined>
  getMany(keys: readonly string[], batchLoader?: GuardBatchLoader<V>): Promise<(V | undefined)[]>
  getEntry(key: string): Promise<CacheEntry<V> | undefined>
  has(key: string): Promise<boolean>
  getTTL(key: string): Promise<number | undefined>
  setTTL(key: string, ttl: number): Promise<boolean>
  set(key: string, value: V, options?: object | number): Promise<SetResult>
  delete(key: string): Promise<boolean>
  invalidate(target: string | readonly string[] | object): Promise<void>
  clear(): Promise<void>
  stats(): object
}

/** An invalidation target as the guard reads it (the cache validates the rest). */
export interface GuardTarget {
  namespace?: string
  all?: boolean
  keys?: readonly string[]
  patterns?: readonly string[]
  tags?: readonly string[]
}

/** What the guard needs of a cache: the public methods of a `TieredCache`. */
export interface GuardableCache {
  /** Returns a {@link GuardableNamespace}; typed loosely so typed caches fit too. */
  namespace(name: never, policy?: never): object
  invalidate(target: GuardTarget): Promise<void>
  invalidateByEvent(event: string, params?: Readonly<Record<string, string>>): Promise<void>
  flush(options?: object): Promise<number>
  stats(): object
  close(options?: object): Promise<void>
}

/** Options of {@link guardCache}. */
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

const NOBODY: Principal = Object.freeze({
  id: '(none)',
  roles: Object.freeze([]) as readonly string[],
})
const ALL_NAMESPACES = '*'

/** Shared state of one guard: policy, audit, limiter. */
class Checks {
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

function keyList(key: unknown): readonly string[] {
  return [key as string]
}

function keysOf(keys: unknown): readonly string[] | undefined {
  return Array.isArray(keys) ? keys : undefined
}

/**
 * A namespace behind the guard: every call is checked against the policy (L1 hits included)
 * before it reaches the cache. The principal is the one the view was made for, else the one
 * {@link runAs} set for the current request.
 */
export class GuardedNamespace<V = unknown> {
  /** Namespace name. */
  readonly name: string
  readonly #inner: GuardableNamespace<V>
  readonly #checks: Checks
  readonly #fixed: Principal | undefined
  // the permission mask of the last principal seen: one comparison on the hot path
  #last: Principal | undefined
  #lastMask = 0
  readonly #masks = new WeakMap<Principal, number>()

  /** @internal use {@link GuardedCache.namespace} */
  constructor(inner: GuardableNamespace<V>, checks: Checks, fixed: Principal | undefined) {
    this.name = inner.name
    this.#inner = inner
    this.#checks = checks
    this.#fixed = fixed
    if (fixed !== undefined) this.#mask(fixed)
  }

  #principal(): Principal {
    return this.#fixed ?? currentPrincipal() ?? NOBODY
  }

  #mask(p: Principal): number {
    if (p === this.#last) return this.#lastMask
    let mask = this.#masks.get(p)
    if (mask === undefined) {
      mask = this.#checks.policy.mask(p.roles, this.name)
      this.#masks.set(p, mask)
    }
    this.#last = p
    this.#lastMask = mask
    return mask
  }

  /** Checks `op` (and `also`, when given) and runs `call` through the limiter and audit. */
  #guard<T>(
    op: Operation,
    method: string,
    keys: readonly string[] | undefined,
    call: () => Promise<T>,
    also?: Operation,
    value?: { value: unknown },
  ): Promise<T> {
    const p = this.#principal()
    const mask = this.#mask(p)
    const checks = this.#checks
    if ((mask & OP_BIT[op]) === 0) {
      return Promise.reject(checks.deny(p, op, method, this.name, keys))
    }
    if (also !== undefined && (mask & OP_BIT[also]) === 0) {
      return Promise.reject(checks.deny(p, also, method, this.name, keys))
    }
    if (!checks.slow) return call()
    return checks.run(p, op, method, this.name, keys, call, value)
  }

  /** `get`, allowed by `read`. */
  get(key: string): Promise<V | undefined> {
    // the L1 hit path: one principal lookup and one mask test before the cache's own fast path
    const p = this.#fixed ?? currentPrincipal() ?? NOBODY
    const mask = p === this.#last ? this.#lastMask : this.#mask(p)
    const checks = this.#checks
    if ((mask & 1) === 0) return Promise.reject(checks.deny(p, 'read', 'get', this.name, [key]))
    if (!checks.slow) return this.#inner.get(key)
    return checks.run(p, 'read', 'get', this.name, [key], () => this.#inner.get(key))
  }

  /**
   * `getOrSet`: `read`; with a loader given here, also `write` (the loader's value is cached, so
   * a reader could otherwise plant values). The namespace's own loader needs only `read`.
   */
  getOrSet(key: string, loader: GuardValueLoader<V>, options?: object): Promise<V>
  getOrSet(key: string, loader?: GuardLoader<V>, options?: object): Promise<V | undefined>
  getOrSet(key: string, loader?: GuardLoader<V>, options?: object): Promise<V | undefined> {
    return this.#guard(
      'read',
      'getOrSet',
      keyList(key),
      () => this.#inner.getOrSet(key, loader, options),
      loader === undefined ? undefined : 'write',
    )
  }

  /** `getMany`: `read`; with a batch loader given here, also `write`. */
  getMany(keys: readonly string[], batchLoader?: GuardBatchLoader<V>): Promise<(V | undefined)[]> {
    return this.#guard(
      'read',
      'getMany',
      keysOf(keys),
      () => this.#inner.getMany(keys, batchLoader),
      batchLoader === undefined ? undefined : 'write',
    )
  }

  /** `getEntry`, allowed by `read`. */
  getEntry(key: string): Promise<CacheEntry<V> | undefined> {
    return this.#guard('read', 'getEntry', keyList(key), () => this.#inner.getEntry(key))
  }

  /** `has`, allowed by `read`. */
  has(key: string): Promise<boolean> {
    return this.#guard('read', 'has', keyList(key), () => this.#inner.has(key))
  }

  /** `getTTL`, allowed by `read`. */
  getTTL(key: string): Promise<number | undefined> {
    return this.#guard('read', 'getTTL', keyList(key), () => this.#inner.getTTL(key))
  }

  /** `setTTL`, allowed by `write`. */
  setTTL(key: string, ttl: number): Promise<boolean> {
    return this.#guard('write', 'setTTL', keyList(key), () => this.#inner.setTTL(key, ttl))
  }

  /** `set`, allowed by `write`. */
  set(key: string, value: V, options?: object | number): Promise<SetResult> {
    return this.#guard(
      'write',
      'set',
      keyList(key),
      () => this.#inner.set(key, value, options),
      undefined,
      { value },
    )
  }

  /** `delete`, allowed by `delete`. */
  delete(key: string): Promise<boolean> {
    return this.#guard('delete', 'delete', keyList(key), () => this.#inner.delete(key))
  }

  /** `invalidate` (keys, patterns, tags or all of this namespace), allowed by `invalidate`. */
  invalidate(target: string | readonly string[] | Omit<GuardTarget, 'namespace'>): Promise<void> {
    const keys =
      typeof target === 'string' ? [target] : Array.isArray(target) ? keysOf(target) : undefined
    const tags = typeof target === 'object' && target !== null && 'tags' in target
    if (tags) {
      // tags reach every namespace: only a grant on every namespace allows it
      return guardEverywhere(this.#checks, this.#principal(), 'invalidate', 'invalidate', () =>
        this.#inner.invalidate(target),
      )
    }
    return this.#guard('invalidate', 'invalidate', keys, () => this.#inner.invalidate(target))
  }

  /** `clear` (drops the cached copies of the namespace), allowed by `invalidate`. */
  clear(): Promise<void> {
    return this.#guard('invalidate', 'clear', undefined, () => this.#inner.clear())
  }

  /** The namespace's counters, allowed by `admin`. */
  stats(): object {
    const p = this.#principal()
    if ((this.#mask(p) & OP_BIT.admin) === 0) {
      throw this.#checks.deny(p, 'admin', 'stats', this.name, undefined)
    }
    return this.#inner.stats()
  }
}

function guardEverywhere<T>(
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

function guardNamespaces<T>(
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

/** Calls on the whole cache, for one principal (or the current request's). */
class CacheCalls {
  protected readonly inner: GuardableCache
  protected readonly checks: Checks
  readonly #fixed: Principal | undefined
  readonly #namespaces = new Map<string, GuardedNamespace<unknown>>()

  constructor(inner: GuardableCache, checks: Checks, fixed: Principal | undefined) {
    this.inner = inner
    this.checks = checks
    this.#fixed = fixed
  }

  #principal(): Principal {
    return this.#fixed ?? currentPrincipal() ?? NOBODY
  }

  /**
   * The guarded namespace `name`. With a `policy` (loader, TTL, ...), the caller needs `admin`
   * on the namespace: a policy changes what every caller gets.
   * @throws {ForbiddenError} | the cache's errors for a bad name or policy
   */
  namespace<V = unknown>(name: string, policy?: object): GuardedNamespace<V> {
    if (policy !== undefined) {
      const p = this.#principal()
      if ((this.checks.policy.mask(p.roles, String(name)) & OP_BIT.admin) === 0) {
        throw this.checks.deny(p, 'admin', 'namespace', String(name), undefined)
      }
    }
    const known = this.#namespaces.get(name)
    if (known !== undefined && policy === undefined) return known as GuardedNamespace<V>
    const inner = this.inner.namespace(name as never, policy as never) as GuardableNamespace<V>
    const guarded = new GuardedNamespace<V>(inner, this.checks, this.#fixed)
    this.#namespaces.set(name, guarded as GuardedNamespace<unknown>)
    return guarded
  }

  /**
   * `cache.invalidate`: `invalidate` on the target's namespace; tags (which reach every
   * namespace) and targets without a namespace need it on every namespace (a grant on `*`).
   */
  invalidate(target: GuardTarget): Promise<void> {
    const p = this.#principal()
    const t = target as GuardTarget | undefined
    const ns = typeof t === 'object' && t !== null ? t.namespace : undefined
    if (typeof ns === 'string' && t?.tags === undefined) {
      return guardNamespaces(
        this.checks,
        p,
        'invalidate',
        'invalidate',
        [ns],
        keysOf(t?.keys),
        () => this.inner.invalidate(target),
      )
    }
    return guardEverywhere(this.checks, p, 'invalidate', 'invalidate', () =>
      this.inner.invalidate(target),
    )
  }

  /**
   * `cache.invalidateByEvent`: `invalidate` on every namespace the event's rules name (from
   * `options.config`); a rule with tags, or no config, needs it on every namespace.
   */
  invalidateByEvent(event: string, params?: Readonly<Record<string, string>>): Promise<void> {
    const p = this.#principal()
    const rules =
      typeof event === 'string' && this.checks.config !== undefined
        ? Object.hasOwn(this.checks.config.invalidation.events, event)
          ? this.checks.config.invalidation.events[event]
          : undefined
        : undefined
    const call = () => this.inner.invalidateByEvent(event, params)
    if (
      rules === undefined ||
      rules.some((r) => r.tags !== undefined || r.namespace === undefined)
    ) {
      return guardEverywhere(this.checks, p, 'invalidate', 'invalidateByEvent', call)
    }
    const namespaces = [...new Set(rules.map((r) => r.namespace as string))]
    return guardNamespaces(
      this.checks,
      p,
      'invalidate',
      'invalidateByEvent',
      namespaces,
      undefined,
      call,
    )
  }

  /** `cache.flush`: `admin` on every namespace. */
  flush(options?: object): Promise<number> {
    return guardEverywhere(this.checks, this.#principal(), 'admin', 'flush', () =>
      this.inner.flush(options),
    )
  }

  /** `cache.stats`: `admin` on every namespace. */
  stats(): object {
    const p = this.#principal()
    if ((this.checks.policy.everywhere(p.roles) & OP_BIT.admin) === 0) {
      throw this.checks.deny(p, 'admin', 'stats', ALL_NAMESPACES, undefined)
    }
    return this.inner.stats()
  }
}

/** The calls of one principal, whatever the request context says; from {@link GuardedCache.as}. */
export class PrincipalView extends CacheCalls {}

/**
 * A cache behind an access guard: every call of the cache and of its namespaces is checked
 * against the policy, L1 hits included, then rate limited and audited when configured.
 */
export class GuardedCache extends CacheCalls {
  readonly #views = new WeakMap<Principal, PrincipalView>()

  /** @internal use {@link guardCache} */
  constructor(inner: GuardableCache, checks: Checks) {
    super(inner, checks, undefined)
  }

  /**
   * The calls of `principal` (from a session, a token), bypassing the request context.
   * @throws {InvalidOptionError} for a malformed principal
   */
  as(principal: Principal): PrincipalView {
    const p = checkPrincipal(principal)
    let view = this.#views.get(p)
    if (view === undefined) {
      view = new PrincipalView(this.inner, this.checks, p)
      this.#views.set(p, view)
    }
    return view
  }

  /** `cache.close`: `admin` on every namespace. */
  close(options?: object): Promise<void> {
    return guardEverywhere(this.checks, currentPrincipal() ?? NOBODY, 'admin', 'close', () =>
      this.inner.close(options),
    )
  }
}

/**
 * Puts an access guard in front of a `TieredCache`: roles → namespace globs × operations, deny by
 * default, checked on every call (L1 hits included); refusals are `ForbiddenError`
 * (`E_FORBIDDEN`) naming principal, roles, operation and namespace, before any tier is touched.
 * @throws {InvalidOptionError} for a bad policy, audit or limiter
 */
export function guardCache(cache: GuardableCache, options: GuardOptions): GuardedCache {
  if (typeof cache?.namespace !== 'function' || typeof cache.invalidate !== 'function') {
    throw new InvalidOptionError('cache', 'must be a TieredCache (createTieredCache)')
  }
  return new GuardedCache(cache, new Checks(options))
}
