import { InvalidOptionError } from '@actor-cache/core'
import { Checks, type GuardOptions } from './guard-checks.js'
import type { GuardableCache } from './guardable.js'
import { GuardedCacheCalls } from './guarded-cache.js'
import type { Principal } from './policy.js'

/** The calls of the wrapped cache that a guarded cache and a principal view pass on. */
type CacheCall = 'namespace' | 'invalidate' | 'invalidateByEvent' | 'flush' | 'stats'

/**
 * The calls of one principal, whatever the request context says; from {@link GuardedCache} `.as`.
 * Checked as a {@link GuardedCache} checks them, typed as the wrapped cache `C` types them.
 */
export type PrincipalView<C extends GuardableCache = GuardableCache> = Pick<C, CacheCall>

/**
 * A cache behind an access guard: every call of the cache and of its namespaces is checked
 * against the policy, L1 hits included, then rate limited and audited when configured. The
 * principal is the one `runAs` set for the current request.
 *
 * Its methods, and those of its namespaces, are the wrapped cache's own, typed as `C` types them
 * (overloads included): a cache typed by its namespaces types `namespace('name')` by its name,
 * and `getOrSet` with a loader that always finds a value resolves to `V`. A guarded namespace is
 * typed as the namespace it wraps; only its `name` and `strategy` are read without a check.
 *
 * What each call needs: `namespace(name, policy)` with a policy, `stats`, `flush` and `close`:
 * `admin` (on every namespace for the cache-wide ones); `invalidate`: `invalidate` on the
 * target's namespace, on every namespace for tags or a target without a namespace;
 * `invalidateByEvent`: `invalidate` on each namespace the event's rules name (from
 * `options.config`), on every namespace for rules with tags or without a config.
 *
 * Without `C`, a type every guarded cache is assignable to (to close it, or take a view); give
 * `C` (`GuardedCache<TieredCache>`, `GuardedCache<typeof cache>`) to use its namespaces.
 */
export type GuardedCache<C extends GuardableCache = GuardableCache> = Pick<
  C,
  CacheCall | 'close'
> & {
  /**
   * The calls of `principal` (from a session, a token), bypassing the request context.
   * @throws {InvalidOptionError} for a malformed principal
   */
  as(principal: Principal): PrincipalView<C>
}

/**
 * Puts an access guard in front of a `TieredCache`: roles → namespace globs × operations, deny by
 * default, checked on every call (L1 hits included); refusals are `ForbiddenError`
 * (`E_FORBIDDEN`) naming principal, roles, operation and namespace, before any tier is touched.
 * The guarded cache keeps the types of `cache` (see {@link GuardedCache}).
 * @throws {InvalidOptionError} for a bad policy, audit or limiter
 */
export function guardCache<C extends GuardableCache>(
  cache: C,
  options: GuardOptions,
): GuardedCache<C> {
  if (typeof cache?.namespace !== 'function' || typeof cache.invalidate !== 'function') {
    throw new InvalidOptionError('cache', 'must be a TieredCache (createTieredCache)')
  }
  // the runtime object checks and passes arguments on; its types are the wrapped cache's
  return new GuardedCacheCalls(cache, new Checks(options)) as unknown as GuardedCache<C>
}
