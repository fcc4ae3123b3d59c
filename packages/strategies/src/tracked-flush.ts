import {
  hasTrackedBatches,
  InvalidOptionError,
  type QueuedWrite,
  type TrackedBatchItem,
  type TrackedBatchResult,
  type WriteTracking,
} from '@actor-cache/core'
import type { RecordStore } from './policy.js'
import { announceLogged } from './writes.js'

/**
 * How long a tracked write waits for an earlier version of its key before that version is logged
 * as unused (ms): at least 10 s, and longer than twice the queue's claim timeout, so a write a
 * dead consumer held comes back before its version is given up.
 */
export function gapWait(claimTimeout: number | undefined): number {
  return Math.max(10_000, 2 * (claimTimeout ?? 60_000) + 1_000)
}

/** Most versions logged as unused for one key at once; a larger gap is not lost claims. */
const MAX_UNUSED = 1_000

/** Whether a batch item's write was logged now (not found persisted before, not waiting). */
const written = (r: TrackedBatchResult): boolean => r.outcome === 'written'

/** The author of the records of unused versions. */
const UNUSED_AUTHOR = 'actor-cache:unused-version'

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
 * id and author the write was queued with. A write whose key misses an earlier version waits for
 * it ({@link gapWait} from when it was queued); then the missing versions are logged as unused
 * (records that change nothing), so every write keeps the version it was acknowledged with.
 */
export async function flushTracked(
  record: RecordStore<unknown>,
  tracking: WriteTracking,
  writes: readonly QueuedDelivery[],
  now: number,
  wait: number,
): Promise<TrackedFlush> {
  if (!hasTrackedBatches(record)) {
    throw new InvalidOptionError(
      'record',
      'a tracked write-behind namespace needs a store of record that writes tracked batches',
    )
  }
  const items = writes.map((d) => itemOf(tracking, d.write))
  const first = await record.writeTrackedBatch(items)
  if (first.some(written)) announceLogged(tracking)
  const out: TrackedFlush = { done: [], waiting: [], flushed: new Map() }
  const gaps = new Map<string, { stored: number; at: number[] }>()
  first.forEach((r, i) => {
    const d = writes[i] as QueuedDelivery
    if (r.outcome !== 'gap') {
      settle(out, d, r)
      return
    }
    const g = gaps.get(d.write.key) ?? { stored: r.version, at: [] }
    g.at.push(i)
    gaps.set(d.write.key, g)
  })
  const retry: number[] = []
  const fillers: TrackedBatchItem[] = []
  for (const [key, g] of gaps) {
    const oldest = Math.min(...g.at.map((i) => (writes[i] as QueuedDelivery).write.enqueuedAt))
    if (now - oldest < wait) {
      for (const i of g.at) out.waiting.push((writes[i] as QueuedDelivery).id)
      continue
    }
    retry.push(...g.at)
    const queued = new Set(g.at.map((i) => (writes[i] as QueuedDelivery).write.version))
    const top = Math.max(...queued)
    const like = (writes[g.at[0] as number] as QueuedDelivery).write
    if (top - g.stored > MAX_UNUSED) {
      // not versions claimed and lost: the write's version is not of this chain (a retry takes
      // the batch to the dead letters after its attempts)
      throw new InvalidOptionError(
        'version',
        `${like.namespace} ${JSON.stringify(key)}: a queued write at version ${top} is ${top - g.stored - 1} versions past the logged ${g.stored}; tracked versions must count on from the log`,
      )
    }
    for (let v = g.stored + 1; v < top; v++) {
      if (!queued.has(v)) fillers.push(unusedItem(tracking, like, key, v))
    }
  }
  if (retry.length === 0) return out
  const second = await record.writeTrackedBatch([
    ...fillers,
    ...retry.map((i) => items[i] as TrackedBatchItem),
  ])
  if (second.some(written)) announceLogged(tracking)
  retry.forEach((i, j) => {
    settle(out, writes[i] as QueuedDelivery, second[fillers.length + j] as TrackedBatchResult)
  })
  return out
}

/** The item that logs version `version` of `key` as unused (its write never came). */
function unusedItem(
  tracking: WriteTracking,
  like: QueuedWrite,
  key: string,
  version: number,
): TrackedBatchItem {
  const build = tracking.prepare({
    namespace: like.namespace,
    key,
    kind: 'delete',
    unused: true,
    userId: UNUSED_AUTHOR,
    systemId: like.systemId ?? UNUSED_AUTHOR,
    // the same id whichever instance logs it: a second one is a duplicate, not a second record
    changeId: `unused:${like.namespace}:${key}:${version}`,
  })
  return { key, version, write: { kind: 'delete' }, build, unused: true }
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
