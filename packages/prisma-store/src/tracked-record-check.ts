import { type ChangeRecord, InvalidOptionError, type PriorState } from '@actor-cache/core'
import { type StoreScope, TIER } from './store-scope.js'

/**
 * Checks that the record is the next one of this entity's chain and describes this write: a
 * record that is not is a programming error of the builder.
 */
export function checkChain(
  scope: StoreScope,
  key: string,
  kind: 'set' | 'delete',
  prior: PriorState,
  r: ChangeRecord,
): void {
  const fail = (field: string, what: string): never => {
    throw new InvalidOptionError(
      field,
      `${what} (change ${JSON.stringify(r.id)} of ${scope.namespace} ${JSON.stringify(key)}); nothing was written`,
      { tier: TIER, namespace: scope.namespace, key },
    )
  }
  const show = JSON.stringify
  if (r.entityType !== scope.namespace)
    fail('entityType', `must be the namespace ${show(scope.namespace)}, got ${show(r.entityType)}`)
  if (r.entityId !== key) fail('entityId', `must be the key ${show(key)}, got ${show(r.entityId)}`)
  if (r.version !== prior.version + 1)
    fail('version', `must be the stored version + 1 (${prior.version + 1}), got ${r.version}`)
  if ((r.prevHash ?? null) !== prior.headHash)
    fail(
      'prevHash',
      `must be the hash of the entity's newest record (${show(prior.headHash)}), got ${show(r.prevHash)}`,
    )
  if (typeof r.hash !== 'string' || r.hash.length === 0)
    fail('hash', 'must be a non-empty string: the next tracked write links to it')
  const type = kind === 'delete' ? 'delete' : prior.exists ? 'update' : 'create'
  if (r.changeType !== type) {
    const state = prior.exists ? 'an existing' : 'an absent'
    fail(
      'changeType',
      `must be ${type} for a ${kind} of ${state} entity, got ${show(r.changeType)}`,
    )
  }
}
