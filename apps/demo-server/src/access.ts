import { ForbiddenError, globToRegExp } from '@actor-cache/core'
import type { AccessPolicy, Operation, Principal } from '@actor-cache/security'

/** Checks a principal may do `operation` on `namespace`; throws `ForbiddenError` if not. */
export type GrantCheck = (principal: Principal, operation: Operation, namespace: string) => void

/**
 * The policy's answer for calls the guard cannot check itself: a guarded namespace's `delete`
 * passes no options on, so a compare-and-delete (`expectedVersion`) goes to the cache after this
 * check. Same rules as the guard: deny by default, a grant of one of the principal's roles on a
 * glob matching the namespace allows.
 */
export function createGrantCheck(policy: AccessPolicy): GrantCheck {
  const grants = new Map(
    Object.entries(policy.roles).map(([role, list]) => [
      role,
      list.map((g) => ({
        match: (typeof g.namespaces === 'string' ? [g.namespaces] : g.namespaces).map((glob) =>
          globToRegExp(glob),
        ),
        operations: g.operations,
      })),
    ]),
  )
  return (principal, operation, namespace) => {
    const allowed = principal.roles.some((role) =>
      (grants.get(role) ?? []).some(
        (g) =>
          (g.operations === '*' || g.operations.includes(operation)) &&
          g.match.some((m) => m.test(namespace)),
      ),
    )
    if (!allowed) {
      throw new ForbiddenError(principal.id, principal.roles, operation, { namespace })
    }
  }
}

/**
 * Requires one of `roles` (the audit routes' roles of `demo.audit`), else `ForbiddenError`
 * naming what was refused.
 */
export function requireRole(principal: Principal, roles: readonly string[], what: string): void {
  if (!principal.roles.some((r) => roles.includes(r))) {
    throw new ForbiddenError(principal.id, principal.roles, what)
  }
}
