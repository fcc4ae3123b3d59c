import type { SetResult } from '@actor-cache/core'
import type { Principal } from '@actor-cache/security'
import type { TieredDeleteOptions, TieredSetOptions } from '@actor-cache/strategies'
import type { GrantCheck } from '../access.js'
import type { CacheView, DemoCache } from '../stack.js'
import type { DemoNamespaces, TrackedNamespace } from './types.js'

/** Writes of one tracked namespace as one caller may make them (a rollback's writer too). */
export interface TrackedWriter<V> {
  set(key: string, value: V, options: TieredSetOptions): Promise<SetResult>
  delete(key: string, options: TieredDeleteOptions): Promise<boolean>
}

/**
 * The caller's writer of a tracked namespace: sets go through its guarded view; a delete is
 * checked against the caller's grants, then made on the cache with its options (the guard's
 * `delete` would drop `expectedVersion`, and with it the compare-and-delete). Both are logged
 * with their author by the record, in the write's transaction.
 */
export function trackedWriter<N extends TrackedNamespace>(
  namespace: N,
  caller: { view: CacheView; cache: DemoCache; principal: Principal; check: GrantCheck },
): TrackedWriter<DemoNamespaces[N]> {
  return {
    set: (key, value, options) => caller.view.namespace(namespace).set(key, value, options),
    delete: async (key, options) => {
      caller.check(caller.principal, 'delete', namespace)
      return caller.cache.namespace(namespace).delete(key, options)
    },
  }
}
