import type { ChangeRecord } from './change-log.js'

/**
 * The relay's lease: who may publish the change log to the transport. One holder at a time
 * across instances; `epoch` grows with every acquisition, and the transport refuses writes made
 * under an older epoch once a newer holder wrote (fencing), so a relay that paused past its
 * lease cannot overwrite its successor's work.
 */
export interface RelayLease {
  /** Fencing number: grows with every acquisition. */
  readonly epoch: number
  /** Who holds it (the relay's id). */
  readonly owner: string
  /** Random token proving ownership. */
  readonly token: string
  /** True when the lease was taken from a holder that let it expire (a takeover), not released. */
  readonly takeover: boolean
}

/** What one {@link ChangeReader.read} returned. */
export interface TransportRead {
  /**
   * Records published since the previous read, in publish order within each shard (so one
   * entity's in the order the relay published them; across shards in any order). May repeat
   * records published twice (a relay that died between publishing and checkpointing).
   */
  records: ChangeRecord[]
  /**
   * True when the reader lost entries since its previous read: trimmed before it read them,
   * its reader group or the streams gone (Redis restarted). Everything before this read must
   * then be read again from the change log.
   */
  lost: boolean
  /** True when some shard had more entries than the read took: read again at once. */
  more: boolean
  /**
   * The relay's saved checkpoint, fetched at the start of this read (undefined when none is
   * saved): every record the change log's feed holds before it had been published before this
   * read began.
   */
  checkpoint: string | undefined
}

/** Options of {@link ChangeTransport.openReader}. */
export interface ChangeReaderOptions {
  /**
   * Name of the reader's group. Omitted: a random name, the group removed on close. A reader
   * group is how the relay knows what may be trimmed.
   */
  group?: string
}

/** One process's read side of a {@link ChangeTransport}: every shard, from where it joined. */
export interface ChangeReader {
  /** Up to `max` entries per shard published since the previous read (the first read: since open). */
  read(max: number): Promise<TransportRead>
  /** Resolves when the relay published something, after `ms`, or on `signal`. */
  wait(ms: number, signal: AbortSignal): Promise<void>
  /** Stops reading; removes the group when its name was random. */
  close(): Promise<void>
}

/** What {@link ChangeTransport.trim} did. */
export interface TrimResult {
  /** Entries removed over every shard. */
  trimmed: number
  /** Reader groups removed because none of their consumers was seen for the reader timeout. */
  expiredReaders: number
}

/**
 * Where a change-stream relay publishes the change log for other processes to read: sharded,
 * fenced streams (the Redis Streams implementation is `@actor-cache/redis`'s
 * `createRedisChangeTransport`). The relay reads the log's ordered feed, {@link publish}es each
 * batch, then {@link saveCheckpoint}s the feed position after it; readers in every process read
 * every shard. An entity's records go to one shard, so they stay in the relay's order.
 */
export interface ChangeTransport {
  /** Number of shards (streams). */
  readonly shards: number
  /** Takes the relay lease if free; `undefined` while another holder's is alive. */
  acquireRelay(owner: string, ttl: number): Promise<RelayLease | undefined>
  /** Extends the lease to `ttl` ms from now; false when it was lost. */
  renewRelay(lease: RelayLease, ttl: number): Promise<boolean>
  /** Gives the lease up (if still held), so another relay may take it at once. */
  releaseRelay(lease: RelayLease): Promise<void>
  /** The feed checkpoint saved by the latest relay (undefined when none is saved). */
  loadCheckpoint(): Promise<string | undefined>
  /**
   * Publishes records, each to its entity's shard, in order; then wakes waiting readers.
   * @throws {LeaseLostError} when a newer lease holder has published or saved since
   */
  publish(lease: RelayLease, records: readonly ChangeRecord[]): Promise<void>
  /**
   * Saves the feed position after everything published.
   * @throws {LeaseLostError} when the lease is no longer held under this epoch
   */
  saveCheckpoint(lease: RelayLease, checkpoint: string): Promise<void>
  /**
   * Removes entries every reader group has read, and groups no consumer was seen in for the
   * reader timeout. Streams are also capped in length when published to; a reader behind the
   * cap finds `lost`.
   */
  trim(): Promise<TrimResult>
  /** Wakes the relay (best effort, no wait): a change was just appended. */
  notifyRelay(): void
  /** Resolves when {@link notifyRelay} was called anywhere, after `ms`, or on `signal`. */
  waitForChanges(ms: number, signal: AbortSignal): Promise<void>
  /** Joins every shard at its end, as a new reader group (or the named one). */
  openReader(options?: ChangeReaderOptions): Promise<ChangeReader>
  /** Closes what the transport created (not a client passed in). */
  close(): Promise<void>
}
