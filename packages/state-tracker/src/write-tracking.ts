import { randomUUID } from 'node:crypto'
import {
  type ChangeBuilder,
  type ChangeLog,
  type ChangeRecord,
  ConflictError,
  InvalidOptionError,
  type PriorState,
  type Serializer,
  validateNamespace,
  type WriteConflict,
  type WriteToTrack,
  type WriteTracking,
} from '@actor-cache/core'
import { hashableValue, hashChange } from './chain-hash.js'
import { checkAuthor, resolveAuthor } from './context.js'
import { type ConflictPolicy, checkPolicy, mergeByRules } from './merge.js'
import { replayTo } from './state-at.js'

/** How one tracked namespace is tracked. */
export interface TrackedNamespaceOptions {
  /** What a write whose expected version is not the stored one does. @default 'reject' */
  conflicts?: ConflictPolicy
}

/** The namespaces to track: a list, or options by name. */
export type TrackedNamespaces =
  | readonly string[]
  | Readonly<Record<string, TrackedNamespaceOptions>>

/** What the tracking of a cache's writes needs from its tracker. */
export interface WriteTrackingContext {
  /** The log the record's tracked writes append to (read to merge conflicts). */
  log: ChangeLog
  serializer: Serializer
  /** System id of writes that name none. */
  systemId?: string
  /** Called after the record committed tracked writes (the tracker wakes its relay and streams). */
  onLogged?: () => void
}

function author(
  write: WriteToTrack,
  ctx: WriteTrackingContext,
): { userId: string; systemId: string } {
  const given = checkAuthor({ userId: write.userId, systemId: write.systemId }, 'options')
  const who = resolveAuthor([given], ctx.systemId)
  if ('missing' in who) {
    throw new InvalidOptionError(
      who.missing,
      `namespace "${write.namespace}" is tracked: a write needs a user id and a system id (pass them in its options, or set them once per request with trackAs())`,
    )
  }
  return who
}

/** Refuses a prior state that is not the one a compare-and-set expected. */
function checkExpected(write: WriteToTrack, prior: PriorState): void {
  const expected = write.expectedVersion
  if (expected === undefined) return
  const actual = prior.exists ? prior.version : 0
  if (expected === actual) return
  throw new ConflictError(expected, actual, { namespace: write.namespace, key: write.key })
}

/** A write's change type by the prior state; an unused version changes nothing. */
function changeTypeOf(write: WriteToTrack, prior: PriorState): ChangeRecord['changeType'] {
  if (write.unused === true) return prior.exists ? 'update' : 'delete'
  return write.kind === 'delete' ? 'delete' : prior.exists ? 'update' : 'create'
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
  const before = prior.exists ? (prior.value ?? null) : null
  if (write.kind === 'delete' && !prior.exists && write.unused !== true) return undefined
  const record: ChangeRecord = {
    id,
    entityType: write.namespace,
    entityId: write.key,
    changeType: changeTypeOf(write, prior),
    oldValue: before,
    newValue:
      write.unused === true ? before : write.kind === 'delete' ? null : (write.value ?? null),
    timestamp: Math.max(prior.now, prior.headTime),
    userId: who.userId,
    systemId: who.systemId,
    version: prior.version + 1,
    prevHash: prior.headHash,
  }
  record.hash = hashChange(record, serializer)
  return record
}

function checkNamespaces(namespaces: unknown): Map<string, ConflictPolicy> {
  const entries: [string, TrackedNamespaceOptions | undefined][] = Array.isArray(namespaces)
    ? namespaces.map((n) => [n as string, undefined])
    : typeof namespaces === 'object' && namespaces !== null
      ? Object.entries(namespaces as Record<string, TrackedNamespaceOptions>)
      : []
  if (entries.length === 0) {
    throw new InvalidOptionError('namespaces', 'must list at least one namespace to track')
  }
  return new Map(
    entries.map(([name, options]) => [
      validateNamespace(name),
      checkPolicy(options?.conflicts, `namespaces.${name}.conflicts`),
    ]),
  )
}

/** The value a conflict resolves to by `policy`, or `undefined` when it stands. */
async function resolveConflict(
  c: WriteConflict,
  policy: ConflictPolicy,
  ctx: WriteTrackingContext,
): Promise<{ value: unknown } | undefined> {
  if (policy === 'reject') return undefined
  if (policy === 'last_writer_wins') return { value: c.value }
  const history = await ctx.log.history(c.namespace, c.key)
  const newest = history.at(-1)?.version ?? 0
  if (c.actualVersion === 0 || c.actualVersion > newest || c.expectedVersion > newest) {
    return undefined // deleted since, or versions the log does not hold: nothing to merge with
  }
  const base = replayTo(history, { version: c.expectedVersion })
  const theirs = replayTo(history, { version: c.actualVersion })
  if (!theirs.exists) return undefined
  const baseValue = base.exists ? base.value : undefined
  if (typeof policy.merge === 'function') {
    return { value: policy.merge(baseValue, c.value, theirs.value) }
  }
  const merged = mergeByRules(baseValue, c.value, theirs.value, policy.merge, ctx.serializer)
  if (merged.ok) return { value: merged.value }
  const names = merged.fields.map((f) => (f === '' ? 'the value' : `"${f}"`)).join(', ')
  throw new ConflictError(c.expectedVersion, c.actualVersion, {
    namespace: c.namespace,
    key: c.key,
    message: `conflict: ${c.namespace} ${JSON.stringify(c.key)} is at version ${c.actualVersion}, not ${c.expectedVersion}, and ${names} changed on both sides with no rule to merge them`,
  })
}

/**
 * The tracking a `TieredCache` consults (its `tracking` option): writes and deletes of the named
 * namespaces are logged by the store of record in the write's transaction, and a conflicting
 * compare-and-set is resolved by the namespace's policy.
 */
export function createWriteTracking(
  namespaces: TrackedNamespaces,
  ctx: WriteTrackingContext,
): WriteTracking {
  const policies = checkNamespaces(namespaces)
  /** Checks a write before any I/O: tracked, with an author, a value the log can hash. */
  const check = (write: WriteToTrack) => {
    if (!policies.has(write.namespace)) {
      throw new InvalidOptionError('namespace', `"${write.namespace}" is not tracked`)
    }
    const who = author(write, ctx)
    // a value the log could not store or hash fails here, before any I/O
    if (write.kind === 'set' && write.unused !== true) hashableValue(write.value, ctx.serializer)
    if (
      write.changeId !== undefined &&
      (typeof write.changeId !== 'string' || write.changeId === '')
    ) {
      throw new InvalidOptionError('changeId', 'must be a non-empty string')
    }
    return { who, id: write.changeId ?? randomUUID() }
  }
  return {
    tracks: (namespace) => policies.has(namespace),
    prepare(write): ChangeBuilder {
      const { who, id } = check(write)
      return (prior) => buildRecord(write, id, who, prior, ctx.serializer)
    },
    stamp(write) {
      const { who, id } = check(write)
      return { changeId: id, ...who }
    },
    async resolve(conflict) {
      const policy = policies.get(conflict.namespace)
      return policy === undefined ? undefined : resolveConflict(conflict, policy, ctx)
    },
    logged() {
      ctx.onLogged?.()
    },
  }
}
