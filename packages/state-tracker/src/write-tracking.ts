import { randomUUID } from 'node:crypto'
import {
  type ChangeBuilder,
  type ChangeRecord,
  ConflictError,
  InvalidOptionError,
  type PriorState,
  type Serializer,
  validateNamespace,
  type WriteToTrack,
  type WriteTracking,
} from '@actor-cache/core'
import { hashableValue, hashChange } from './chain-hash.js'
import { checkAuthor, currentAuthor } from './context.js'

/** What the tracking of a cache's writes needs from its tracker. */
export interface WriteTrackingContext {
  serializer: Serializer
  /** System id of writes that name none. */
  systemId?: string
}

function author(
  write: WriteToTrack,
  ctx: WriteTrackingContext,
): { userId: string; systemId: string } {
  const given = checkAuthor({ userId: write.userId, systemId: write.systemId }, 'options')
  const context = currentAuthor()
  const userId = given.userId ?? context?.userId
  const systemId = given.systemId ?? context?.systemId ?? ctx.systemId
  if (userId === undefined || systemId === undefined) {
    throw new InvalidOptionError(
      userId === undefined ? 'userId' : 'systemId',
      `namespace "${write.namespace}" is tracked: a write needs a user id and a system id (pass them in its options, or set them once per request with trackAs())`,
    )
  }
  return { userId, systemId }
}

/** Refuses a prior state that is not the one a compare-and-set expected. */
function checkExpected(write: WriteToTrack, prior: PriorState): void {
  const expected = write.expectedVersion
  if (expected === undefined) return
  const actual = prior.exists ? prior.version : 0
  if (expected === actual) return
  throw new ConflictError(expected, actual, { namespace: write.namespace, key: write.key })
}

/** The change record of a tracked write, built from the prior state under the record's lock. */
function buildRecord(
  write: WriteToTrack,
  id: string,
  who: { userId: string; systemId: string },
  prior: PriorState,
  serializer: Serializer,
): ChangeRecord | undefined {
  checkExpected(write, prior)
  if (write.kind === 'delete' && !prior.exists) return undefined
  const record: ChangeRecord = {
    id,
    entityType: write.namespace,
    entityId: write.key,
    changeType: write.kind === 'delete' ? 'delete' : prior.exists ? 'update' : 'create',
    oldValue: prior.exists ? (prior.value ?? null) : null,
    newValue: write.kind === 'delete' ? null : (write.value ?? null),
    timestamp: Math.max(prior.now, prior.headTime),
    userId: who.userId,
    systemId: who.systemId,
    version: prior.version + 1,
    prevHash: prior.headHash,
  }
  record.hash = hashChange(record, serializer)
  return record
}

/**
 * The tracking a `TieredCache` consults (its `tracking` option): writes and deletes of the named
 * namespaces are logged by the store of record in the write's transaction.
 */
export function createWriteTracking(
  namespaces: readonly string[],
  ctx: WriteTrackingContext,
): WriteTracking {
  if (!Array.isArray(namespaces) || namespaces.length === 0) {
    throw new InvalidOptionError('namespaces', 'must list at least one namespace to track')
  }
  const tracked = new Set(namespaces.map((n) => validateNamespace(n)))
  return {
    tracks: (namespace) => tracked.has(namespace),
    prepare(write): ChangeBuilder {
      if (!tracked.has(write.namespace)) {
        throw new InvalidOptionError('namespace', `"${write.namespace}" is not tracked`)
      }
      const who = author(write, ctx)
      // a value the log could not store or hash fails here, before any I/O
      if (write.kind === 'set') hashableValue(write.value, ctx.serializer)
      const id = randomUUID()
      return (prior) => buildRecord(write, id, who, prior, ctx.serializer)
    },
  }
}
