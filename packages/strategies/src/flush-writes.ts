import {
  hasVersionedDeletes,
  type QueueDelivery,
  type QueuedWrite,
  type WriteQueue,
  type WriteTracking,
} from '@actor-cache/core'
import type { FlushTarget } from './flusher.js'
import { flushTracked, gapWait, type QueuedDelivery } from './tracked-flush.js'

/** The queued writes of one key in a batch. */
export interface Group {
  /** The newest (the one an untracked namespace persists). */
  latest: QueuedWrite
  ids: string[]
  /** Every write of the key in the batch (a tracked namespace logs each). */
  writes: QueuedDelivery[]
  attempts: number
  /** When the oldest write of the group was queued. */
  oldest: number
}

/**
 * Adds a delivery to the groups of its namespace and key; returns whether the key had a group in
 * the batch already (the write is coalesced with it).
 */
export function addToGroups(
  byNamespace: Map<string, Map<string, Group>>,
  d: QueueDelivery<QueuedWrite>,
): boolean {
  const w = d.item
  let groups = byNamespace.get(w.namespace)
  if (groups === undefined) {
    groups = new Map()
    byNamespace.set(w.namespace, groups)
  }
  const g = groups.get(w.key)
  if (g === undefined) {
    groups.set(w.key, {
      latest: w,
      ids: [d.id],
      writes: [{ id: d.id, write: w }],
      attempts: d.attempts,
      oldest: w.enqueuedAt,
    })
    return false
  }
  g.ids.push(d.id)
  g.writes.push({ id: d.id, write: w })
  g.oldest = Math.min(g.oldest, w.enqueuedAt)
  g.attempts = Math.max(g.attempts, d.attempts)
  // newest version wins; on a tie the later delivery (queue order) does
  if (w.version >= g.latest.version) g.latest = w
  return true
}

/**
 * Writes the newest write of each group to the record (one `setMany`, one delete), acks the
 * deliveries and tells the namespace what was flushed.
 */
export async function writeGroups(
  queue: WriteQueue<QueuedWrite>,
  target: FlushTarget,
  pending: Group[],
): Promise<void> {
  const sets = pending.filter((g) => g.latest.op === 'set')
  const deletes = pending.filter((g) => g.latest.op === 'delete')
  if (sets.length > 0) {
    await target.record.setMany(
      sets.map((g) => ({
        key: g.latest.key,
        value: g.latest.value,
        version: g.latest.version,
        expiresAt: g.latest.expiresAt,
        tags: g.latest.tags,
      })),
    )
  }
  if (deletes.length > 0) {
    // versioned deletes leave tombstones: a set of the key older than the delete, flushed
    // later by this or another instance (a redelivery), is then ignored
    const record = target.record
    if (hasVersionedDeletes(record)) {
      await record.deleteVersions(
        deletes.map((g) => ({ key: g.latest.key, version: g.latest.version })),
      )
    } else await record.deleteMany(deletes.map((g) => g.latest.key))
  }
  await queue.ack(pending.flatMap((g) => g.ids))
  await flushed(
    target,
    pending.map((g) => [g.latest.key, g.latest.version]),
  )
}

/**
 * Writes every write of a tracked namespace's groups with its change record (see
 * {@link flushTracked}) and acks them; writes waiting for an earlier version of their key go back
 * to the queue. Returns how many were acked and how many wait.
 */
export async function writeTrackedGroups(
  queue: WriteQueue<QueuedWrite>,
  target: FlushTarget,
  pending: Group[],
  now: number,
): Promise<{ count: number; waiting: number }> {
  const writes = pending.flatMap((g) => g.writes)
  const tracking = target.tracking as WriteTracking
  const r = await flushTracked(target.record, tracking, writes, now, gapWait(queue.claimTimeout))
  if (r.done.length > 0) await queue.ack(r.done)
  if (r.waiting.length > 0) await queue.release(r.waiting)
  await flushed(target, [...r.flushed])
  return { count: r.done.length, waiting: r.waiting.length }
}

/** Tells the namespace which versions of which keys are in the record now. */
async function flushed(target: FlushTarget, keys: [string, number][]): Promise<void> {
  const after: Promise<void>[] = []
  for (const [key, version] of keys) {
    const p = target.flushed(key, version)
    if (p !== undefined) after.push(p)
  }
  if (after.length > 0) await Promise.all(after)
}
