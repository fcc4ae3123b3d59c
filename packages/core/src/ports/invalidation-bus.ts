import { randomUUID } from 'node:crypto'
import { ClosedError, InvalidKeyError } from '../errors.js'
import { channels } from '../events.js'
import { parseGlob, validateKey, validateNamespace, validateTags } from '../keys.js'

/** What to invalidate. At least one of `all`, `keys`, `patterns`, `tags` is required. */
export interface InvalidationMessage {
  /** Namespace of `keys`, `patterns` and `all`. Optional for tag-only messages (all namespaces). */
  namespace?: string
  /** Drop the whole namespace. */
  all?: boolean
  /** Exact keys. */
  keys?: readonly string[]
  /** Glob patterns over keys of `namespace`. */
  patterns?: readonly string[]
  /** Entries carrying any of these tags. */
  tags?: readonly string[]
}

/** A message as delivered: who sent it and its place in the sender's sequence. */
export interface DeliveredInvalidation extends InvalidationMessage {
  /** Instance id of the sender. */
  senderId: string
  /** Sender's sequence number, 1, 2, 3, ... with no gaps. */
  seq: number
  /** Sender's clock when it published (epoch ms). */
  sentAt: number
}

/** Receives invalidations from other instances. */
export interface InvalidationListener {
  /** Another instance invalidated something: drop it locally. */
  onInvalidate(message: DeliveredInvalidation): void
  /**
   * Messages may have been lost (the subscription dropped, or a sequence gap was seen): drop
   * everything whose freshness depends on the bus.
   */
  onReset(reason: string): void
}

/**
 * Carries invalidations between instances so every L1 drops what another instance changed.
 * Delivery is at-most-once; a bus must call `onReset` whenever it cannot rule out a loss.
 * Messages never come back to their own sender.
 */
export interface InvalidationBus {
  /** Unique id of this instance on the bus. */
  readonly instanceId: string
  /**
   * Sends `message` to every other instance. Validates it first.
   * @throws {InvalidKeyError} on a malformed namespace, key, pattern or tag
   */
  publish(message: InvalidationMessage): Promise<void>
  /** Registers a listener; returns a function that removes it. */
  subscribe(listener: InvalidationListener): () => void
  /** Stops sending and receiving. */
  close(): Promise<void>
}

/**
 * Checks a message and returns a normalised copy (arrays frozen, empty ones dropped).
 * @throws {InvalidKeyError}
 */
export function validateInvalidationMessage(message: InvalidationMessage): InvalidationMessage {
  if (typeof message !== 'object' || message === null) {
    throw new InvalidKeyError('an invalidation message must be an object')
  }
  const out: InvalidationMessage = {}
  const ns = message.namespace === undefined ? undefined : validateNamespace(message.namespace)
  if (ns !== undefined) out.namespace = ns
  if (message.all === true) out.all = true
  if (message.keys !== undefined) {
    if (!Array.isArray(message.keys)) throw new InvalidKeyError('keys must be an array of strings')
    for (const k of message.keys) validateKey(k, ns)
    if (message.keys.length > 0) out.keys = Object.freeze([...message.keys])
  }
  if (message.patterns !== undefined) {
    if (!Array.isArray(message.patterns))
      throw new InvalidKeyError('patterns must be an array of strings')
    for (const p of message.patterns) parseGlob(p)
    if (message.patterns.length > 0) out.patterns = Object.freeze([...message.patterns])
  }
  if (message.tags !== undefined && message.tags.length > 0)
    out.tags = validateTags(message.tags, ns)
  if (!out.all && !out.keys && !out.patterns && !out.tags) {
    throw new InvalidKeyError('an invalidation message needs all, keys, patterns or tags')
  }
  if ((out.all || out.keys || out.patterns) && ns === undefined) {
    throw new InvalidKeyError(
      'an invalidation message with all, keys or patterns needs a namespace',
    )
  }
  return out
}

/** Outcome of {@link SequenceTracker.observe}. */
export type SequenceVerdict = 'next' | 'duplicate' | 'gap'

/**
 * Tracks the last sequence number seen from each sender, to detect lost messages.
 * The first message from a sender is always `next` (nothing it sent earlier concerns a
 * subscriber that was not there). Remembers at most `maxSenders` senders (least recent dropped).
 */
export class SequenceTracker {
  readonly #last = new Map<string, number>()
  readonly #maxSenders: number
  constructor(maxSenders = 10_000) {
    this.#maxSenders = maxSenders
  }
  /** Records `seq` from `senderId` and says whether it follows the previous one. */
  observe(senderId: string, seq: number): SequenceVerdict {
    const last = this.#last.get(senderId)
    if (last !== undefined && seq <= last) return 'duplicate'
    this.#last.delete(senderId)
    this.#last.set(senderId, seq)
    if (this.#last.size > this.#maxSenders) {
      const oldest = this.#last.keys().next().value as string
      this.#last.delete(oldest)
    }
    return last === undefined || seq === last + 1 ? 'next' : 'gap'
  }
  /** Forgets every sender (after a reset, numbering restarts from whatever comes next). */
  clear(): void {
    this.#last.clear()
  }
}

/**
 * Calls a listener; if it throws, reports the error on the `error` channel and tells that
 * listener to reset (it may have dropped only part of what it should). Other listeners still run.
 */
export function deliver(listener: InvalidationListener, message: DeliveredInvalidation): void {
  try {
    listener.onInvalidate(message)
  } catch (error) {
    if (channels.error.hasSubscribers) {
      channels.error.publish({
        tier: 'bus',
        namespace: message.namespace ?? '',
        durationMs: 0,
        error,
        operation: 'invalidate',
      })
    }
    try {
      listener.onReset('listener failed')
    } catch {
      // nothing more can be done for this listener
    }
  }
}

/** An in-process bus hub: every bus connected to it hears the others. */
export interface LocalBusHub {
  /** A new bus endpoint (an "instance"). */
  connect(instanceId?: string): InvalidationBus
  /** Tells every listener of `instanceId` that messages may have been lost (for tests). */
  simulateReset(instanceId: string, reason?: string): void
}

/**
 * An in-process {@link InvalidationBus} hub, for tests and single-process deployments running
 * several caches. Delivery is asynchronous (a microtask later), in order, and never lost.
 */
export function createLocalBusHub(): LocalBusHub {
  const endpoints = new Map<string, Set<InvalidationListener>>()
  return {
    connect(instanceId = randomUUID()) {
      if (endpoints.has(instanceId)) {
        throw new InvalidKeyError(`instance id "${instanceId}" is already connected to this hub`)
      }
      const listeners = new Set<InvalidationListener>()
      endpoints.set(instanceId, listeners)
      let seq = 0
      let closed = false
      return {
        instanceId,
        async publish(message) {
          if (closed) throw new ClosedError('invalidation bus')
          const delivered: DeliveredInvalidation = {
            ...validateInvalidationMessage(message),
            senderId: instanceId,
            seq: ++seq,
            sentAt: Date.now(),
          }
          Object.freeze(delivered)
          for (const [id, targets] of endpoints) {
            if (id === instanceId) continue
            queueMicrotask(() => {
              for (const l of targets) deliver(l, delivered)
            })
          }
        },
        subscribe(listener) {
          listeners.add(listener)
          return () => listeners.delete(listener)
        },
        async close() {
          closed = true
          endpoints.delete(instanceId)
          listeners.clear()
        },
      }
    },
    simulateReset(instanceId, reason = 'simulated reset') {
      for (const l of endpoints.get(instanceId) ?? []) l.onReset(reason)
    },
  }
}
