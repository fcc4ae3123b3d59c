import { globToRegExp, InvalidOptionError } from '@actor-cache/core'

/** What a call does to a namespace. */
export type Operation = 'read' | 'write' | 'delete' | 'invalidate' | 'admin'

/** Every operation, in a fixed order. */
export const OPERATIONS: readonly Operation[] = Object.freeze([
  'read',
  'write',
  'delete',
  'invalidate',
  'admin',
])

/** Bit of each operation in a permission mask. */
export const OP_BIT: Readonly<Record<Operation, number>> = Object.freeze({
  read: 1,
  write: 2,
  delete: 4,
  invalidate: 8,
  admin: 16,
})

/** One grant of a role: operations on the namespaces matching any of the globs. */
export interface Grant {
  /** Namespace globs (`*`, `?`, `[...]`): `'actor_*'`, `['primary_core', 'derived_stats']`, `'*'`. */
  namespaces: string | readonly string[]
  /** Operations allowed there, or `'*'` for all of them. */
  operations: readonly Operation[] | '*'
}

/**
 * Roles and what each may do. Deny by default: an operation is allowed only when one of the
 * principal's roles has a grant for it on a glob matching the namespace.
 */
export interface AccessPolicy {
  roles: Readonly<Record<string, readonly Grant[]>>
}

/** Who is calling: an id for errors and audit, and the roles that grant access. */
export interface Principal {
  readonly id: string
  readonly roles: readonly string[]
}

const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/

interface CompiledGrant {
  readonly match: RegExp
  /** True when the grant's globs include `*`: it covers every namespace. */
  readonly everywhere: boolean
  readonly mask: number
}

/** A validated policy: answers "which operations may these roles do on this namespace". */
export class CompiledPolicy {
  readonly #roles: ReadonlyMap<string, readonly CompiledGrant[]>

  /** @throws {InvalidOptionError} naming the offending role and grant */
  constructor(policy: AccessPolicy) {
    if (typeof policy !== 'object' || policy === null) {
      throw new InvalidOptionError('policy', 'must be an object { roles }')
    }
    const roles = policy.roles
    if (typeof roles !== 'object' || roles === null || Array.isArray(roles)) {
      throw new InvalidOptionError('policy.roles', 'must map role names to lists of grants')
    }
    const out = new Map<string, CompiledGrant[]>()
    for (const [role, grants] of Object.entries(roles)) {
      const where = `policy.roles.${role}`
      if (!ROLE.test(role)) {
        throw new InvalidOptionError(
          where,
          'role names are 1-64 letters, digits, "_", ".", ":", "-"',
        )
      }
      if (!Array.isArray(grants)) throw new InvalidOptionError(where, 'must be an array of grants')
      out.set(
        role,
        grants.map((g: Grant, i) => compileGrant(g, `${where}[${i}]`)),
      )
    }
    this.#roles = out
  }

  /** Permission mask of `roles` on `namespace` (bits of {@link OP_BIT}). */
  mask(roles: readonly string[], namespace: string): number {
    let mask = 0
    for (const role of roles) {
      for (const g of this.#roles.get(role) ?? []) if (g.match.test(namespace)) mask |= g.mask
    }
    return mask
  }

  /** Permission mask of `roles` over every namespace at once (grants on `*` only). */
  everywhere(roles: readonly string[]): number {
    let mask = 0
    for (const role of roles) {
      for (const g of this.#roles.get(role) ?? []) if (g.everywhere) mask |= g.mask
    }
    return mask
  }
}

function compileGrant(g: Grant, where: string): CompiledGrant {
  if (typeof g !== 'object' || g === null) {
    throw new InvalidOptionError(where, 'must be an object { namespaces, operations }')
  }
  const globs = typeof g.namespaces === 'string' ? [g.namespaces] : g.namespaces
  if (!Array.isArray(globs) || globs.length === 0) {
    throw new InvalidOptionError(
      `${where}.namespaces`,
      'must be a glob or a non-empty list of globs',
    )
  }
  const sources = globs.map((glob: unknown, j) => {
    if (typeof glob !== 'string' || glob.length === 0 || glob.length > 200) {
      throw new InvalidOptionError(
        `${where}.namespaces[${j}]`,
        `must be a non-empty glob, got ${JSON.stringify(glob) ?? String(glob)}`,
      )
    }
    try {
      return globToRegExp(glob).source
    } catch (error) {
      throw new InvalidOptionError(`${where}.namespaces[${j}]`, (error as Error).message, {
        cause: error,
      })
    }
  })
  let mask = 0
  if (g.operations === '*') mask = 31
  else if (!Array.isArray(g.operations) || g.operations.length === 0) {
    throw new InvalidOptionError(`${where}.operations`, "must be '*' or a non-empty list")
  } else {
    for (const op of g.operations as unknown[]) {
      const bit = typeof op === 'string' && Object.hasOwn(OP_BIT, op) ? OP_BIT[op as Operation] : 0
      if (bit === 0) {
        throw new InvalidOptionError(
          `${where}.operations`,
          `unknown operation ${JSON.stringify(op) ?? String(op)}; use ${OPERATIONS.join(', ')}`,
        )
      }
      mask |= bit
    }
  }
  return {
    match: new RegExp(sources.map((s) => `(?:${s})`).join('|'), 'su'),
    everywhere: globs.includes('*'),
    mask,
  }
}

/**
 * A checked, frozen copy of a principal (the guard keys its caches by this object).
 * @throws {InvalidOptionError}
 */
export function checkPrincipal(principal: unknown): Principal {
  const p = principal as Principal
  if (typeof p !== 'object' || p === null) {
    throw new InvalidOptionError('principal', 'must be an object { id, roles }')
  }
  if (typeof p.id !== 'string' || p.id.length === 0 || p.id.length > 256) {
    throw new InvalidOptionError(
      'principal.id',
      'must be a non-empty string of at most 256 characters',
    )
  }
  if (!Array.isArray(p.roles) || p.roles.some((r) => typeof r !== 'string' || !ROLE.test(r))) {
    throw new InvalidOptionError('principal.roles', 'must be an array of role names')
  }
  if (Object.isFrozen(p) && Object.isFrozen(p.roles) && checked.has(p)) return p
  const copy = Object.freeze({ id: p.id, roles: Object.freeze([...p.roles]) })
  checked.add(copy)
  return copy
}

const checked = new WeakSet<object>()
