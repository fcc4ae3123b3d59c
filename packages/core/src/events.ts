import { type Channel, channel } from 'node:diagnostics_channel'

/**
 * Operation events, published on `node:diagnostics_channel`. Stores publish only when a channel
 * has subscribers (`hasSubscribers`), so observability costs nothing until someone listens.
 *
 * @example
 * import { subscribe } from 'node:diagnostics_channel'
 * subscribe(CHANNELS.miss, (msg) => console.log('miss', msg))
 */
export const CHANNELS = {
  /** A read found a live entry. */
  hit: 'actor-cache:hit',
  /** A read found nothing (or only an expired entry). */
  miss: 'actor-cache:miss',
  /** A write was applied (or ignored because a newer version is stored: see `applied`). */
  set: 'actor-cache:set',
  /** An entry was removed on request (delete, pattern, clear). */
  delete: 'actor-cache:delete',
  /** An entry was evicted to respect a size or entry limit. */
  evict: 'actor-cache:evict',
  /** An entry was dropped because its TTL passed. */
  expire: 'actor-cache:expire',
  /** An operation failed. */
  error: 'actor-cache:error',
} as const

/** Name of one event kind. */
export type CacheEventKind = keyof typeof CHANNELS

/** Payload of every event. */
export interface CacheEvent {
  /** Tier that handled the operation (`memory`, `redis`, `postgres`, `tiered`, ...). */
  tier: string
  /** Namespace of the entry. */
  namespace: string
  /** Key of the entry, when the event concerns one key. */
  key?: string
  /** Number of entries concerned, for batch and pattern operations. */
  count?: number
  /** Time the operation took, in milliseconds (0 for events not tied to a call, e.g. evictions). */
  durationMs: number
  /** For `set`: false when a newer version was kept. */
  applied?: boolean
  /** For `error`: the error. */
  error?: unknown
  /** For `error`: the operation that failed (`get`, `set`, ...). */
  operation?: string
}

/** The channels themselves, one per event kind. */
export const channels: { readonly [K in CacheEventKind]: Channel } = {
  hit: channel(CHANNELS.hit),
  miss: channel(CHANNELS.miss),
  set: channel(CHANNELS.set),
  delete: channel(CHANNELS.delete),
  evict: channel(CHANNELS.evict),
  expire: channel(CHANNELS.expire),
  error: channel(CHANNELS.error),
}

/**
 * Publishes `event` on the channel of `kind` if anyone listens. Callers on hot paths should test
 * `channels[kind].hasSubscribers` before building the event object.
 */
export function publish(kind: CacheEventKind, event: CacheEvent): void {
  const ch = channels[kind]
  if (ch.hasSubscribers) ch.publish(event)
}
