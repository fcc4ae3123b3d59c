import { type Channel, channel } from 'node:diagnostics_channel'

/**
 * Events of a tiered cache (`@actor-cache/strategies`), published on `node:diagnostics_channel`
 * only while a channel has subscribers, so they cost nothing until someone listens. Each store
 * also publishes its own operations on {@link CHANNELS}; these say what the cache as a whole did.
 *
 * @example
 * import { subscribe } from 'node:diagnostics_channel'
 * subscribe(TIERED_CHANNELS.load, (event) => console.log((event as TieredLoadEvent).durationMs))
 */
export const TIERED_CHANNELS = {
  /** A read was answered by a tier: {@link TieredHitEvent}. */
  hit: 'actor-cache:tiered:hit',
  /** A read found nothing anywhere, loader included: {@link TieredKeyEvent}. */
  miss: 'actor-cache:tiered:miss',
  /** A loader or batch loader call ended: {@link TieredLoadEvent}. */
  load: 'actor-cache:tiered:load',
  /** A copy past its TTL was served within grace: {@link TieredKeyEvent}. */
  stale: 'actor-cache:tiered:stale',
  /** A refresh-ahead of a key near its expiry started: {@link TieredKeyEvent}. */
  refresh: 'actor-cache:tiered:refresh',
  /** A write or delete ended: {@link TieredWriteEvent}. */
  write: 'actor-cache:tiered:write',
  /** An invalidation was applied in this instance: {@link TieredInvalidateEvent}. */
  invalidate: 'actor-cache:tiered:invalidate',
  /** The write-behind flusher handled a batch: {@link TieredFlushEvent}. */
  flush: 'actor-cache:tiered:flush',
} as const

/** Name of one tiered event kind. */
export type TieredEventKind = keyof typeof TIERED_CHANNELS

/** An event about one key of a namespace. */
export interface TieredKeyEvent {
  namespace: string
  key: string
}

/**
 * Where a hit was found: a cache tier by its place in the cache (`l1`, `l2`, `l3` when L3 is a
 * cache rather than the record), the store of record, or this instance's write-behind write not
 * flushed yet.
 */
export type HitLevel = 'l1' | 'l2' | 'l3' | 'record' | 'unflushed'

/** A read answered by a tier. */
export interface TieredHitEvent extends TieredKeyEvent {
  /** Where the value was found. */
  level: HitLevel
  /** The tier's name as its store gives it (`memory`, `redis`, `postgres`, or `unflushed`). */
  tier: string
  /** True when the store of record answered (`level` is `record`). */
  record: boolean
}

/** How a loader call ended. */
export type LoadOutcome = 'value' | 'not_found' | 'error' | 'timeout'

/** A loader (one key) or batch loader (`count` keys) call that ended. */
export interface TieredLoadEvent {
  namespace: string
  /** The key, for a loader call. */
  key?: string
  /** How many keys a batch loader was asked for. */
  count?: number
  /** How many of them a batch loader found (answered with a value). */
  found?: number
  /** `refresh`: a refresh-ahead in the background; `read`: a caller waits for it. */
  purpose: 'read' | 'refresh'
  durationMs: number
  outcome: LoadOutcome
  /** For `error` and `timeout`. */
  error?: unknown
}

/** How a write or delete ended. */
export type WriteOutcome = 'applied' | 'ignored' | 'error'

/** A write (`set`) or delete of one key that ended. */
export interface TieredWriteEvent extends TieredKeyEvent {
  operation: 'set' | 'delete'
  strategy: 'write_through' | 'write_behind' | 'write_around'
  durationMs: number
  /** `ignored`: a newer version was kept; `error`: the call failed (see `error`). */
  outcome: WriteOutcome
  /** The version the write got, when it applied. */
  version?: number
  error?: unknown
}

/** An invalidation applied in this instance. */
export interface TieredInvalidateEvent {
  namespace: string
  /** `local`: asked in this instance; `remote`: received from another instance through the bus. */
  origin: 'local' | 'remote'
  keys?: readonly string[]
  patterns?: readonly string[]
  tags?: readonly string[]
  all?: boolean
}

/** The writes of one namespace in a batch the write-behind flusher handled. */
export interface TieredFlushEvent {
  namespace: string
  /** Writes in the batch. */
  count: number
  durationMs: number
  /** Age of the oldest write in the batch when the batch ended, in ms (the flush lag). */
  lagMs: number
  /** `persisted`: acknowledged and done; `retry`: the record failed and the batch stays queued. */
  outcome: 'persisted' | 'retry'
  /** Writes the record refused for good (sent to the dead letters). */
  rejected: number
}

/** The channels themselves, one per tiered event kind. */
export const tieredChannels: { readonly [K in TieredEventKind]: Channel } = {
  hit: channel(TIERED_CHANNELS.hit),
  miss: channel(TIERED_CHANNELS.miss),
  load: channel(TIERED_CHANNELS.load),
  stale: channel(TIERED_CHANNELS.stale),
  refresh: channel(TIERED_CHANNELS.refresh),
  write: channel(TIERED_CHANNELS.write),
  invalidate: channel(TIERED_CHANNELS.invalidate),
  flush: channel(TIERED_CHANNELS.flush),
}
