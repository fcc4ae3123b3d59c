import type { ChangeRecord } from '@actor-cache/core'

/** What a subscription read from a source at its cursor. */
export type SourceRead =
  | { kind: 'records'; records: ChangeRecord[] }
  /** The cursor is older than the oldest record the source still holds. */
  | { kind: 'evicted' }

/** A place in the log's feed: a checkpoint (`undefined` is the start), or out of the window. */
export type FeedPosition =
  | { kind: 'checkpoint'; checkpoint: string | undefined }
  | { kind: 'evicted' }

/**
 * Where subscriptions take live changes from: a window of the log's feed, numbered by position,
 * that a relay appends to (the in-process {@link LocalRelay}; a Redis Streams relay later). A
 * subscription keeps its own cursor, so a slow one never holds the relay or another back: when
 * its cursor falls out of the window it reads the log's feed itself from
 * {@link ChangeSource.checkpointAt} of its cursor, then rejoins.
 *
 * Contract: records at positions below `head()` at some instant were all readable from the
 * log's feed before that instant (so a log query started afterwards sees them); a position's
 * record never changes; the feed read from `checkpointAt(p)` yields every record at positions
 * `>= p` (and maybe some before it, which subscriptions drop as duplicates).
 */
export interface ChangeSource {
  /** Starts (on first use) and resolves once the source has reached the feed's end once. */
  retain(): Promise<void>
  /** Undoes one {@link retain}; the source stops working when nobody retains it. */
  release(): void
  /** Position after the newest record held. */
  head(): number
  /** Position of the oldest record held. */
  tail(): number
  /** Up to `max` records from position `from` (empty when none yet). */
  read(from: number, max: number): SourceRead
  /**
   * The feed checkpoint to re-read the log from so as to see every record from position `p` on
   * (`undefined`: the feed's start), or `evicted` once `p` is out of the window.
   */
  checkpointAt(p: number): FeedPosition
  /** Resolves when a record at `from` or later arrives, after `ms`, or on `signal`. */
  wait(from: number, ms: number, signal: AbortSignal): Promise<void>
  /** Asks the source to look for new records now (a change was just appended). */
  nudge(): void
}
