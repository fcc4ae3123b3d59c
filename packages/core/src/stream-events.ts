import { type Channel, channel } from 'node:diagnostics_channel'

/**
 * Events of change streams (`@actor-cache/state-tracker`'s `subscribe`), published on
 * `node:diagnostics_channel` only while a channel has subscribers. A metrics exporter turns them
 * into series: consumer lag (changes and ms), gaps detected, backfilled and unresolved.
 *
 * @example
 * import { subscribe } from 'node:diagnostics_channel'
 * subscribe(STREAM_CHANNELS.gap, (event) => console.log((event as StreamGapEvent).outcome))
 */
export const STREAM_CHANNELS = {
  /** A subscription delivered a batch: how far behind it is, {@link StreamLagEvent}. */
  lag: 'actor-cache:stream:lag',
  /** A subscription found, backfilled or could not backfill a version gap: {@link StreamGapEvent}. */
  gap: 'actor-cache:stream:gap',
  /** A change-stream relay took the relay lease: {@link StreamRelayEvent}. */
  relay: 'actor-cache:stream:relay',
} as const

/** Name of one stream event kind. */
export type StreamEventKind = keyof typeof STREAM_CHANNELS

/** How far a subscription is behind, after it delivered a batch. */
export interface StreamLagEvent {
  /** Id of the subscription, unique in the process. */
  subscription: number
  /** Changes the source holds that the subscription has not taken yet (0 when reading the log itself). */
  changes: number
  /** Age of the newest change delivered: the reader's clock minus the change's timestamp (ms). */
  ms: number
}

/**
 * What happened to a gap (an entity's next version missing while later ones arrived):
 * `detected`; `backfilled`, closed by a read of the log; `unresolved`, a backfill left it open;
 * `abandoned`, the subscription closed while it was open (published once per open gap at close).
 */
export type StreamGapOutcome = 'detected' | 'backfilled' | 'unresolved' | 'abandoned'

/** A version gap of one entity in one subscription. */
export interface StreamGapEvent {
  subscription: number
  entityType: string
  entityId: string
  /** The version the subscription waits for. */
  expected: number
  outcome: StreamGapOutcome
}

/** A relay took the lease (`takeover`: from a holder that let it expire) or lost it. */
export interface StreamRelayEvent {
  /** The relay's id. */
  owner: string
  /** The lease's fencing number. */
  epoch: number
  /** `acquired`: a free lease; `takeover`: an expired holder's; `lost`: a newer holder has it. */
  outcome: 'acquired' | 'takeover' | 'lost'
}

/** The channels themselves, one per stream event kind. */
export const streamChannels: { readonly [K in StreamEventKind]: Channel } = {
  lag: channel(STREAM_CHANNELS.lag),
  gap: channel(STREAM_CHANNELS.gap),
  relay: channel(STREAM_CHANNELS.relay),
}
