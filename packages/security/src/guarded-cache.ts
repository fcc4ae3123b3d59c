import { currentPrincipal } from './context.js'
import {
  ALL_NAMESPACES,
  type Checks,
  guardEverywhere,
  guardNamespaces,
  keysOf,
  NOBODY,
} from './guard-checks.js'
import type { GuardableCache, GuardTarget } from './guardable.js'
import { GuardedNamespace } from './guarded-namespace.js'
import { checkPrincipal, OP_BIT, type Principal } from './policy.js'

/**
 * Calls on the whole cache, for one principal (or the current request's): what a principal view
 * is at runtime. Its users see it typed by the cache it wraps (see `PrincipalView`), so its own
 * signatures only need to pass arguments on.
 */
export class CacheCalls {
  protected readonly inner: GuardableCache
  protected readonly checks: Checks
  readonly #fixed: Principal | undefined
  readonly #namespaces = new Map<string, GuardedNamespace>()

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
  namespace(name: string, policy?: unknown): GuardedNamespace {
    if (policy !== undefined) {
      const p = this.#principal()
      if ((this.checks.policy.mask(p.roles, String(name)) & OP_BIT.admin) === 0) {
        throw this.checks.deny(p, 'admin', 'namespace', String(name), undefined)
      }
    }
    const known = this.#namespaces.get(name)
    if (known !== undefined && policy === undefined) return known
    const inner = this.inner.namespace(name as never, policy as never)
    const guarded = new GuardedNamespace(inner, this.checks, this.#fixed)
    this.#namespaces.set(name, guarded)
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
  flush(options?: unknown): Promise<number> {
    return guardEverywhere(this.checks, this.#principal(), 'admin', 'flush', () =>
      this.inner.flush(options as never),
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

/** A guarded cache at runtime: the calls of the request's principal, `as` and `close`. */
export class GuardedCacheCalls extends CacheCalls {
  readonly #views = new WeakMap<Principal, CacheCalls>()

  constructor(inner: GuardableCache, checks: Checks) {
    super(inner, checks, undefined)
  }

  /**
   * The calls of `principal` (from a session, a token), bypassing the request context.
   * @throws {InvalidOptionError} for a malformed principal
   */
  as(principal: Principal): CacheCalls {
    const p = checkPrincipal(principal)
    let view = this.#views.get(p)
    if (view === undefined) {
      view = new CacheCalls(this.inner, this.checks, p)
      this.#views.set(p, view)
    }
    return view
  }

  /** `cache.close`: `admin` on every namespace. */
  close(options?: unknown): Promise<void> {
    return guardEverywhere(this.checks, currentPrincipal() ?? NOBODY, 'admin', 'close', () =>
      this.inner.close(options as never),
    )
  }
}
