import {
  type ChangeLog,
  type ChangeRecord,
  ConflictError,
  InvalidOptionError,
  type Serializer,
} from '@actor-cache/core'
import { hashChange, sameValue } from './chain-hash.js'
import type { CheckedChange } from './track-input.js'

/** What appending needs. */
export interface AppendContext {
  log: ChangeLog
  serializer: Serializer
  /** Appends retried after losing a race for a version. */
  maxRetries: number
}

const exists = (head: ChangeRecord | undefined): boolean =>
  head !== undefined && head.changeType !== 'delete'

function conflict(c: CheckedChange, head: ChangeRecord | undefined, why: string): ConflictError {
  const actual = head?.version ?? 0
  const expected = typeof c.expected === 'number' ? c.expected : actual
  return new ConflictError(expected, actual, {
    namespace: c.entityType,
    key: c.entityId,
    message: `conflict: ${c.changeType} of ${c.entityType} ${JSON.stringify(c.entityId)} ${why}`,
  })
}

/** Why the head refuses the change, if it does. */
function refusal(
  c: CheckedChange,
  head: ChangeRecord | undefined,
  s: Serializer,
): string | undefined {
  const v = head?.version ?? 0
  const state =
    head === undefined
      ? 'it was never created'
      : `it is at version ${v}${exists(head) ? '' : ', deleted'}`
  if (typeof c.expected === 'number' && c.expected !== v)
    return `expected version ${c.expected}, but ${state}`
  if (c.expected === 'absent' && exists(head)) return `expected it absent, but ${state}`
  if (c.expected === 'exists' && !exists(head)) return `expected it to exist, but ${state}`
  if (c.changeType === 'create' && exists(head)) return `creates it, but ${state}`
  if (c.changeType !== 'create' && head !== undefined && !exists(head)) {
    return `needs it to exist, but ${state}`
  }
  if (c.oldValue !== undefined && exists(head) && !sameValue(c.oldValue, head?.newValue, s)) {
    return `starts from an old value that is not version ${v}'s new value (changed since it was read)`
  }
  return undefined
}

/** The logged change `c.id` names, checked to be the same change; undefined when not logged. */
async function logged(ctx: AppendContext, c: CheckedChange): Promise<ChangeRecord | undefined> {
  const found = (await ctx.log.query({ id: c.id, limit: 1 })).records[0]
  if (found === undefined) return undefined
  const same =
    found.entityType === c.entityType &&
    found.entityId === c.entityId &&
    found.changeType === c.changeType &&
    sameValue(found.newValue, c.newValue, ctx.serializer)
  if (!same) {
    throw new InvalidOptionError(
      'id',
      `change id ${JSON.stringify(c.id)} is already logged for another change (version ${found.version} of ${found.entityType} ${JSON.stringify(found.entityId)})`,
    )
  }
  return found
}

/** The record that follows `head`: next version, linked to its hash, stamped by the log's clock. */
function nextRecord(c: CheckedChange, head: ChangeRecord | undefined, now: number, s: Serializer) {
  const oldValue =
    c.changeType === 'create' ? null : exists(head) ? head?.newValue : (c.oldValue ?? null)
  const record: ChangeRecord = {
    id: c.id,
    entityType: c.entityType,
    entityId: c.entityId,
    changeType: c.changeType,
    oldValue: oldValue ?? null,
    newValue: c.newValue ?? null,
    timestamp: Math.max(now, head?.timestamp ?? 0),
    userId: c.userId,
    systemId: c.systemId,
    version: (head?.version ?? 0) + 1,
    prevHash: head?.hash ?? null,
  }
  record.hash = hashChange(record, s)
  return record
}

/**
 * Appends `c` after the entity's head: reads the head and the log's clock, checks the expected
 * state, links and hashes the next version, appends. A race lost to another writer (its version
 * taken) reads the head again, at most `maxRetries` times; the checks then decide whether the
 * change still applies. A change id already logged returns that record (an idempotent retry).
 */
export async function appendChange(ctx: AppendContext, c: CheckedChange): Promise<ChangeRecord> {
  for (let attempt = 0; ; attempt++) {
    const { record: head, now } = await ctx.log.head(c.entityType, c.entityId)
    if (head?.id === c.id) return (await logged(ctx, c)) ?? head
    const why = refusal(c, head, ctx.serializer)
    if (why !== undefined) {
      // the change may be logged already, below a newer head (a retry after a lost reply)
      const earlier = await logged(ctx, c)
      if (earlier !== undefined) return earlier
      throw conflict(c, head, why)
    }
    const record = nextRecord(c, head, now, ctx.serializer)
    try {
      const result = await ctx.log.append([record])
      if (result.appended === 1) return record
      const earlier = await logged(ctx, c)
      if (earlier !== undefined) return earlier
      throw new Error(`change ${c.id} was neither appended nor found in the log`)
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= ctx.maxRetries) throw error
    }
  }
}
