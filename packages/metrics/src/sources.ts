import type { QueueStats } from '@actor-cache/core'

/**
 * What the metrics read from a tiered cache at scrape time: `TieredCache` of
 * `@actor-cache/strategies` fits (this package does not import it).
 */
export interface TieredCacheSource {
  stats(): {
    namespaces: Record<string, TieredNamespaceCounters>
    writeBehind?: WriteBehindCounters | undefined
  }
}

/** The counters of one namespace of a tiered cache (`NamespaceStats`). */
export interface TieredNamespaceCounters {
  l1Hits: number
  lowerHits: number
  recordHits: number
  loads: number
  misses: number
  negativeHits: number
  staleServed: number
  refreshes: number
  errors: number
}

/** The write-behind flusher's counters (`FlushStats`). */
export interface WriteBehindCounters {
  batches: number
  written: number
  coalesced: number
  deadLettered: number
  failures: number
}

/** What the metrics read from an L1 store at scrape time: `MemCache` of `@actor-cache/memcache` fits. */
export interface MemoryTierSource {
  stats(): {
    entries: number
    bytes: number
    maxSize: number
  }
}

/** A write-behind queue whose depth is read at scrape time (`WriteQueue` of core fits). */
export interface QueueSource {
  stats(): Promise<QueueStats>
}
