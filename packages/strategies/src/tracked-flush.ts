import {
  hasTrackedBatches,
  InvalidOptionError,
  type QueuedWrite,
  type TrackedBatchItem,
  type TrackedBatchResult,
  type WriteTracking,
} from '@actor-cache/core'
import type { RecordStore } from './policy.js'

/**
 * How long a tracked write waits for an earlier version of its key that is still on its way (in
 * another consumer's batch) before it is logged at the next version anyway (ms): the earlier one
 * was claimed but never queued (its writer died, or its claim's reply was lost).
 */
const GAP_WAIT = 10_000

/** One queued write of a tracked namespace with the delivery that brought it. */
export interface QueuedDelivery {
  id: string
  write: QueuedWrite
}

/** What a tracked flush of one namespace came to. */
export interface TrackedFlush {
  /** Deliveries persisted (written, or found persisted before): ack them. */
  done: string[]
  /** Deliveries waiting for an earlier version of their key: release them. */
  waiting: string[]
  /** The version each written key is at now. */
  flushed: Map<string, number>
}

/**
 * Persists the queued writes of a tracked namespace with their change records, every write (not
 * only each key's newest: each one is a change), in one transaction
 * (`TrackedBatchStore.writeTrackedBatch`). Each builder comes from the tracker, with the change
 * id and author the write was queued with.
 */
export async function flushTracked(
  record: RecordStore<unknown>,
  tracking: WriteTracking,
  writes: readonly QueuedDelivery[],
  now: number,
): Promise<TrackedFlush> {
  if (!hasTrackedBatches(record)) {
    throw new InvalidOptionError(
      'record',
      'a tracked write-behind namespace needs a store of record that writes tracked batches',
    )
  }
  const items = writes.map((d) => itemOf(tracking, d.write))
  const first = await record.writeTrackedBatch(items)
  const out: TrackedFlush = { done: [], waiting: [], flushed: new Map() }
  const gaps: number[] = []
  first.forEach((r, i) => {
    if (r.outcome === 'gap') gaps.push(i)
    else settle(out, writes[i] as QueuedDelivery, r)
  })
  if (gaps.length === 0) return out
  // a key whose earlier version has not come for GAP_WAIT: that version will not come
  const stale = new Set(
    gaps
      .filter((i) => now - (writes[i] as QueuedDelivery).write.enqueuedAt >= GAP_WAIT)
      .map((i) => (writes[i] as QueuedDelivery).write.key),
  )
  const fill = gaps.filter((i) => stale.has((writes[i] as QueuedDelivery).write.key))
  for (const i of gaps) {
    if (!stale.has((writes[i] as QueuedDelivery).write.key))
      out.waiting.push((writes[i] as QueuedDelivery).id)
  }
  if (fill.length === 0) return out
  const second = await record.writeTrackedBatch(
    fill.map((i) => items[i] as TrackedBatchItem),
    { fillGaps: true },
  )
  second.forEach((r, j) => {
    settle(out, writes[fill[j] as number] as QueuedDelivery, r)
  })
  return out
}

function settle(out: TrackedFlush, d: QueuedDelivery, r: TrackedBatchResult): void {
  if (r.outcome === 'gap') {
    out.waiting.push(d.id)
    return
  }
  out.done.push(d.id)
  if (r.outcome === 'written') {
    const key = d.write.key
    out.flushed.set(key, Math.max(out.flushed.get(key) ?? 0, r.version))
  }
}

/** The batch item of a queued tracked write: its builder made with the stamp it was queued with. */
function itemOf(tracking: WriteTracking, w: QueuedWrite): TrackedBatchItem {
  if (w.changeId === undefined || w.userId === undefined || w.systemId === undefined) {
    throw new InvalidOptionError(
      'write',
      `a queued write of tracked namespace "${w.namespace}" carries no change id and author (queued before the namespace was tracked?)`,
    )
  }
  const build = tracking.prepare({
    namespace: w.namespace,
    key: w.key,
    kind: w.op,
    ...(w.op === 'set' ? { value: w.value } : {}),
    userId: w.userId,
    systemId: w.systemId,
    changeId: w.changeId,
  })
  return {
    key: w.key,
    version: w.version,
    write:
      w.op === 'set'
        ? { kind: 'set', value: w.value, options: { expiresAt: w.expiresAt, tags: w.tags } }
        : { kind: 'delete' },
    build,
  }
}
