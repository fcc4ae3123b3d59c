import { ClosedError, InvalidOptionError, QueueFullError } from '../errors.js'

/** A pending write-behind operation. */
export interface QueuedWrite {
  namespace: string
  key: string
  /** `set` stores `value`; `delete` removes the key. */
  op: 'set' | 'delete'
  /** The value to store (already in the namespace's stored form when the queue is remote). */
  value?: unknown
  /** Version of this write; stores keep the newest, so replays and reordering are safe. */
  version: number
  /** Absolute expiry (epoch ms) or `null`. */
  expiresAt: number | null
  tags: readonly string[]
  /** Id of the state change that belongs to this write, if tracked. */
  changeId?: string
  /** Author of a tracked write (its change record's user and system ids). */
  userId?: string
  systemId?: string
  /** When the write was accepted (epoch ms). */
  enqueuedAt: number
}

/** An item handed to a consumer. */
export interface QueueDelivery<T> {
  /** Queue-assigned id, used to ack or release. */
  readonly id: string
  readonly item: T
  /** How many times the item was handed out, this delivery included. */
  readonly attempts: number
}

/** Counts of a queue. */
export interface QueueStats {
  /** Items waiting to be claimed. */
  ready: number
  /** Items claimed but neither acked nor released. */
  inFlight: number
  /** Most items (ready + in flight) the queue holds. */
  capacity: number
}

/** Options of {@link WriteQueue.claim}. */
export interface ClaimOptions {
  /** Wait up to this many ms for items when none is ready. @default 0 */
  blockMs?: number
}

/**
 * The durable queue behind write-behind. A write is acknowledged to the caller only once
 * `enqueue` resolves; an item leaves the queue only when a consumer `ack`s it after persisting.
 * Delivery is at-least-once, and items may arrive out of order across consumers: consumers
 * must apply versioned writes (newest version wins).
 */
export interface WriteQueue<T = QueuedWrite> {
  /**
   * Adds items, all or none. Resolves once they are as durable as the queue can make them.
   * @throws {QueueFullError} when the items do not fit; nothing is added
   */
  enqueue(items: readonly T[]): Promise<void>
  /** Claims up to `max` items for this consumer. */
  claim(max: number, options?: ClaimOptions): Promise<QueueDelivery<T>[]>
  /** Confirms claimed items were persisted; they leave the queue. */
  ack(ids: readonly string[]): Promise<void>
  /** Returns claimed items to the queue (persisting failed); they will be claimed again. */
  release(ids: readonly string[]): Promise<void>
  /** Current counts. */
  stats(): Promise<QueueStats>
  /** Stops accepting items and wakes blocked consumers. */
  close(): Promise<void>
  /**
   * How long a claimed item stays with its consumer before another may take it (ms): how late an
   * item a dead consumer held can come back.
   */
  readonly claimTimeout?: number
}

/** Longest a claim may block (the largest timer delay Node accepts). */
export const MAX_BLOCK_MS = 2 ** 31 - 1

/** Options of {@link createMemoryWriteQueue}. */
export interface MemoryWriteQueueOptions {
  /** Most items held (ready + in flight). @default 100_000 */
  capacity?: number
  /**
   * Claimed items not acked or released within this many ms return to the queue, so a consumer
   * that died mid-batch does not strand them. @default 60_000
   */
  claimTimeout?: number
}

/**
 * An in-process {@link WriteQueue}. Bounded and never drops an item silently, but it lives in
 * process memory: a crash loses what it holds. Use a durable queue (Redis Streams) where
 * acknowledged writes must survive a crash.
 */
export function createMemoryWriteQueue<T = QueuedWrite>(
  options: MemoryWriteQueueOptions = {},
): WriteQueue<T> {
  const capacity = options.capacity ?? 100_000
  const claimTimeout = options.claimTimeout ?? 60_000
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new InvalidOptionError('capacity', `must be a positive integer, got ${String(capacity)}`)
  }
  if (!(claimTimeout > 0)) {
    throw new InvalidOptionError(
      'claimTimeout',
      `must be a positive number of ms, got ${String(claimTimeout)}`,
    )
  }
  type Slot = { id: string; item: T; attempts: number; claimedAt: number }
  let ready: Slot[] = []
  let head = 0
  const inFlight = new Map<string, Slot>()
  let nextId = 0
  let closed = false
  const waiters = new Set<() => void>()
  const wake = (): void => {
    if (waiters.size === 0) return
    for (const w of waiters) w()
    waiters.clear()
  }
  const readyCount = (): number => ready.length - head
  const reclaimExpired = (now: number): void => {
    for (const slot of inFlight.values()) {
      if (now - slot.claimedAt >= claimTimeout) {
        inFlight.delete(slot.id)
        ready.push(slot)
      }
    }
  }
  const take = (max: number): QueueDelivery<T>[] => {
    const now = Date.now()
    reclaimExpired(now)
    const out: QueueDelivery<T>[] = []
    while (out.length < max && head < ready.length) {
      const slot = ready[head++] as Slot
      slot.attempts++
      slot.claimedAt = now
      inFlight.set(slot.id, slot)
      out.push({ id: slot.id, item: slot.item, attempts: slot.attempts })
    }
    if (head > 1024 && head * 2 > ready.length) {
      ready = ready.slice(head)
      head = 0
    }
    return out
  }
  return {
    claimTimeout,
    async enqueue(items) {
      if (closed) throw new ClosedError('write queue')
      if (readyCount() + inFlight.size + items.length > capacity) throw new QueueFullError(capacity)
      for (const item of items)
        ready.push({ id: String(++nextId), item, attempts: 0, claimedAt: 0 })
      if (items.length > 0) wake()
    },
    async claim(max, claimOptions = {}) {
      if (!Number.isSafeInteger(max) || max < 1) {
        throw new InvalidOptionError('max', `must be a positive integer, got ${String(max)}`)
      }
      const blockMs = claimOptions.blockMs ?? 0
      if (typeof blockMs !== 'number' || !(blockMs >= 0) || blockMs > MAX_BLOCK_MS) {
        throw new InvalidOptionError(
          'blockMs',
          `must be a number of ms from 0 to ${MAX_BLOCK_MS}, got ${String(blockMs)}`,
        )
      }
      let out = take(max)
      if (out.length === 0 && blockMs > 0 && !closed) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, blockMs)
          function done(): void {
            clearTimeout(timer)
            waiters.delete(done)
            resolve()
          }
          waiters.add(done)
        })
        out = take(max)
      }
      return out
    },
    async ack(ids) {
      for (const id of ids) inFlight.delete(id)
    },
    async release(ids) {
      let any = false
      for (const id of ids) {
        const slot = inFlight.get(id)
        if (slot) {
          inFlight.delete(id)
          ready.push(slot)
          any = true
        }
      }
      if (any) wake()
    },
    async stats() {
      return { ready: readyCount(), inFlight: inFlight.size, capacity }
    },
    async close() {
      closed = true
      wake()
    },
  }
}
