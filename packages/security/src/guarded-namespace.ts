import type { CacheEntry, SetResult } from '@actor-cache/core'
import { currentPrincipal } from './context.js'
import { type Checks, guardEverywhere, keyList, keysOf, NOBODY } from './guard-checks.js'
import type { GuardableNamespace, GuardTarget } from './guardable.js'
import { OP_BIT, type Operation, type Principal } from './policy.js'

/**
 * A namespace behind the guard: every call is checked against the policy (L1 hits included)
 * before it reaches the cache. The principal is the one the view was made for, else the one
 * `runAs` set for the current request. Its users see it typed as the namespace it wraps (see
 * `GuardedCache`), so its own signatures only need to pass arguments on.
 */
export class GuardedNamespace {
  /** Namespace name. */
  readonly name: string
  readonly #inner: GuardableNamespace
  readonly #checks: Checks
  readonly #fixed: Principal | undefined
  // the permission mask of the last principal seen: one comparison on the hot path
  #last: Principal | undefined
  #lastMask = 0
  readonly #masks = new WeakMap<Principal, number>()

  constructor(inner: GuardableNamespace, checks: Checks, fixed: Principal | undefined) {
    this.name = inner.name
    this.#inner = inner
    this.#checks = checks
    this.#fixed = fixed
    if (fixed !== undefined) this.#mask(fixed)
  }

  /**
   * The wrapped namespace's write strategy: configuration, not data, so no check (like `name`).
   * Forwarded because the guarded namespace is typed as the namespace it wraps.
   */
  get strategy(): unknown {
    return (this.#inner as { readonly strategy?: unknown }).strategy
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
  get(key: string): Promise<unknown> {
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
  getOrSet(key: string, loader?: unknown, options?: unknown): Promise<unknown> {
    return this.#guard(
      'read',
      'getOrSet',
      keyList(key),
      () => this.#inner.getOrSet(key, loader as never, options as never),
      loader === undefined ? undefined : 'write',
    )
  }

  /** `getMany`: `read`; with a batch loader given here, also `write`. */
  getMany(keys: readonly string[], batchLoader?: unknown): Promise<unknown[]> {
    return this.#guard(
      'read',
      'getMany',
      keysOf(keys),
      () => this.#inner.getMany(keys, batchLoader as never),
      batchLoader === undefined ? undefined : 'write',
    )
  }

  /** `getEntry`, allowed by `read`. */
  getEntry(key: string): Promise<CacheEntry<unknown> | undefined> {
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
  set(key: string, value: unknown, options?: unknown): Promise<SetResult> {
    return this.#guard(
      'write',
      'set',
      keyList(key),
      () => this.#inner.set(key, value as never, options as never),
      undefined,
      { value },
    )
  }

  /** `delete`, allowed by `delete`; its options (an expected version, the author) pass through. */
  delete(key: string, options?: unknown): Promise<boolean> {
    return this.#guard('delete', 'delete', keyList(key), () =>
      this.#inner.delete(key, options as never),
    )
  }

  /** `invalidate` (keys, patterns, tags or all of this namespace), allowed by `invalidate`. */
  invalidate(target: string | readonly string[] | Omit<GuardTarget, 'namespace'>): Promise<void> {
    const keys =
      typeof target === 'string' ? [target] : Array.isArray(target) ? keysOf(target) : undefined
    const tags = typeof target === 'object' && target !== null && 'tags' in target
    if (tags) {
      // tags reach every namespace: only a grant on every namespace allows it
      return guardEverywhere(this.#checks, this.#principal(), 'invalidate', 'invalidate', () =>
        this.#inner.invalidate(target as never),
      )
    }
    return this.#guard('invalidate', 'invalidate', keys, () =>
      this.#inner.invalidate(target as never),
    )
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
