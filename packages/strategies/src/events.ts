import {
  type HitLevel,
  type InvalidationMessage,
  type TieredFlushEvent,
  type TieredHitEvent,
  type TieredInvalidateEvent,
  type TieredLoadEvent,
  type TieredWriteEvent,
  tieredChannels,
} from '@actor-cache/core'

/**
 * Publishing of the tiered events (`TIERED_CHANNELS` in `@actor-cache/core`). Each function
 * checks `hasSubscribers` first, so an event nobody listens to costs one property read; the L1
 * fast path reads {@link hitChannel} itself before calling {@link publishHit}.
 */
export const hitChannel = tieredChannels.hit

/** A read answered at `level` by tier `tier` (its store's name). */
export function publishHit(namespace: string, key: string, tier: string, level: HitLevel): void {
  if (hitChannel.hasSubscribers) {
    hitChannel.publish({
      namespace,
      key,
      level,
      tier,
      record: level === 'record',
    } satisfies TieredHitEvent)
  }
}

/** A read that found nothing anywhere. */
export function publishMiss(namespace: string, key: string): void {
  const ch = tieredChannels.miss
  if (ch.hasSubscribers) ch.publish({ namespace, key })
}

/** A copy within grace served. */
export function publishStale(namespace: string, key: string): void {
  const ch = tieredChannels.stale
  if (ch.hasSubscribers) ch.publish({ namespace, key })
}

/** A refresh-ahead started. */
export function publishRefresh(namespace: string, key: string): void {
  const ch = tieredChannels.refresh
  if (ch.hasSubscribers) ch.publish({ namespace, key })
}

/** True when someone listens to load events (the caller then times the load). */
export function loadWatched(): boolean {
  return tieredChannels.load.hasSubscribers
}

export function publishLoad(event: TieredLoadEvent): void {
  tieredChannels.load.publish(event)
}

/** True when someone listens to write events (the caller then times the write). */
export function writeWatched(): boolean {
  return tieredChannels.write.hasSubscribers
}

export function publishWrite(event: TieredWriteEvent): void {
  tieredChannels.write.publish(event)
}

/** An invalidation applied here: asked in this instance (`local`) or received from another. */
export function publishInvalidate(
  message: InvalidationMessage,
  origin: TieredInvalidateEvent['origin'],
): void {
  const ch = tieredChannels.invalidate
  if (!ch.hasSubscribers) return
  const event: TieredInvalidateEvent = { namespace: message.namespace ?? '', origin }
  if (message.keys !== undefined) event.keys = message.keys
  if (message.patterns !== undefined) event.patterns = message.patterns
  if (message.tags !== undefined) event.tags = message.tags
  if (message.all === true) event.all = true
  ch.publish(event)
}

/** True when someone listens to flush events. */
export function flushWatched(): boolean {
  return tieredChannels.flush.hasSubscribers
}

/** The flusher handled one namespace's writes of a batch (`groups`: one per key, coalesced). */
export function publishFlush(
  namespace: string,
  groups: Iterable<{ readonly ids: readonly string[]; readonly oldest: number }>,
  at: { readonly started: number; readonly now: number; readonly rejected: number },
  outcome: TieredFlushEvent['outcome'],
): void {
  let count = 0
  let oldest = at.now
  for (const g of groups) {
    count += g.ids.length
    if (g.oldest < oldest) oldest = g.oldest
  }
  tieredChannels.flush.publish({
    namespace,
    count,
    durationMs: at.now - at.started,
    lagMs: at.now - oldest,
    outcome,
    rejected: at.rejected,
  } satisfies TieredFlushEvent)
}
