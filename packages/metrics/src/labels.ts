import { isActorCacheError } from '@actor-cache/core'

/** Label value of namespaces beyond the configured (or first `maxNamespaces`) ones. */
export const OTHER_NAMESPACE = '_other'
/** Label value of events that concern no namespace (tag invalidations, connection errors). */
export const NO_NAMESPACE = '_none'
/** Label value of errors that are not Actor Cache errors (no stable `code`). */
export const OTHER_CODE = 'other'

/** Store names mapped to tier labels unless the `tiers` option says otherwise. */
export const DEFAULT_TIERS: Readonly<Record<string, string>> = {
  memory: 'l1',
  redis: 'l2',
  postgres: 'l3',
}

/** Most raw namespace names remembered for their label (beyond it each lookup decides again). */
const MEMO_LIMIT = 10_000

/**
 * Maps namespace names to label values so that label cardinality stays bounded: the configured
 * namespaces keep their name, every other one becomes {@link OTHER_NAMESPACE}. Without a list, the
 * first `max` distinct namespaces seen keep their name.
 */
export class NamespaceLabels {
  readonly #allowed: ReadonlySet<string> | undefined
  readonly #max: number
  readonly #kept = new Set<string>()
  readonly #memo = new Map<string, string>()

  constructor(allowed: readonly string[] | undefined, max: number) {
    this.#allowed = allowed === undefined ? undefined : new Set(allowed)
    this.#max = max
  }

  label(namespace: string): string {
    const memo = this.#memo.get(namespace)
    if (memo !== undefined) return memo
    const label = this.#decide(namespace)
    if (this.#memo.size < MEMO_LIMIT) this.#memo.set(namespace, label)
    return label
  }

  #decide(namespace: string): string {
    if (namespace === '') return NO_NAMESPACE
    if (this.#allowed !== undefined) {
      return this.#allowed.has(namespace) ? namespace : OTHER_NAMESPACE
    }
    if (this.#kept.has(namespace)) return namespace
    if (this.#kept.size < this.#max) {
      this.#kept.add(namespace)
      return namespace
    }
    return OTHER_NAMESPACE
  }
}

/** The `code` label of an error: its stable Actor Cache code, or {@link OTHER_CODE}. */
export function errorCode(error: unknown): string {
  return isActorCacheError(error) ? error.code : OTHER_CODE
}
