import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { type CacheEvent, CHANNELS } from '@actor-cache/core'

/** Hits and misses of one tier's store reads. */
export interface TierReads {
  hits: number
  misses: number
}

/** Memory of the server process, sampled while a measurement runs. */
export interface MemorySamples {
  samples: number
  /** Mean and peak of `process.memoryUsage().heapUsed`, in bytes. */
  heapUsedMean: number
  heapUsedPeak: number
  /** Mean and peak of `process.memoryUsage().rss`, in bytes. */
  rssMean: number
  rssPeak: number
}

/** What the server did since the measurement started (`GET /admin/load-stats`). */
export interface LoadCounts {
  /** Since when (epoch ms), and for how long (ms). */
  startedAt: number
  elapsedMs: number
  /**
   * Operations of the store of record as its store publishes them: one read per key read
   * (`get`), one write per key written (a set, a tracked write with its change record, one row
   * of a batch), one per delete that removed rows.
   */
  db: { reads: number; writes: number; total: number }
  /** Store reads of L1 (`memory`) and L2 (`redis`). */
  l1: TierReads
  l2: TierReads
  memory: MemorySamples
}

/** Counts store events and samples memory between `start` and `close`. */
export interface LoadCounters {
  /** Zeroes the counters and starts counting (and sampling memory every `sampleMs`). */
  start(): void
  snapshot(): LoadCounts
  /** Stops counting (the counters keep their values). */
  stop(): void
}

const TIER_OF_RECORD = 'postgres'

function zeroMemory(): MemorySamples {
  return { samples: 0, heapUsedMean: 0, heapUsedPeak: 0, rssMean: 0, rssPeak: 0 }
}

/**
 * Counters of the load generator, from the store events of `node:diagnostics_channel`
 * (`CHANNELS` of `@actor-cache/core`): the Prisma store publishes its reads and writes (tier
 * `postgres`), memcache and the Redis store their hits and misses. Subscribed only while a
 * measurement runs, so the server pays for the events only then. Every store of the process is
 * counted: one server per process.
 */
export function createLoadCounters(sampleMs = 250): LoadCounters {
  let startedAt = Date.now()
  const db = { reads: 0, writes: 0 }
  const l1: TierReads = { hits: 0, misses: 0 }
  const l2: TierReads = { hits: 0, misses: 0 }
  let heapSum = 0
  let rssSum = 0
  let memory = zeroMemory()
  let timer: NodeJS.Timeout | undefined

  const reads = (tier: string): TierReads | undefined =>
    tier === 'memory' ? l1 : tier === 'redis' ? l2 : undefined
  const onHit = (m: unknown): void => {
    const e = m as CacheEvent
    if (e.tier === TIER_OF_RECORD) db.reads++
    else {
      const t = reads(e.tier)
      if (t !== undefined) t.hits++
    }
  }
  const onMiss = (m: unknown): void => {
    const e = m as CacheEvent
    if (e.tier === TIER_OF_RECORD) db.reads++
    else {
      const t = reads(e.tier)
      if (t !== undefined) t.misses++
    }
  }
  const onWrite = (m: unknown): void => {
    const e = m as CacheEvent
    if (e.tier === TIER_OF_RECORD) db.writes++
  }
  const sample = (): void => {
    const { heapUsed, rss } = process.memoryUsage()
    memory.samples++
    heapSum += heapUsed
    rssSum += rss
    memory.heapUsedPeak = Math.max(memory.heapUsedPeak, heapUsed)
    memory.rssPeak = Math.max(memory.rssPeak, rss)
    memory.heapUsedMean = heapSum / memory.samples
    memory.rssMean = rssSum / memory.samples
  }
  const subscriptions: [string, (m: unknown) => void][] = [
    [CHANNELS.hit, onHit],
    [CHANNELS.miss, onMiss],
    [CHANNELS.set, onWrite],
    [CHANNELS.delete, onWrite],
  ]

  const stop = (): void => {
    if (timer === undefined) return
    clearInterval(timer)
    timer = undefined
    for (const [name, fn] of subscriptions) unsubscribe(name, fn)
  }

  return {
    start() {
      stop()
      startedAt = Date.now()
      db.reads = db.writes = l1.hits = l1.misses = l2.hits = l2.misses = 0
      heapSum = rssSum = 0
      memory = zeroMemory()
      for (const [name, fn] of subscriptions) subscribe(name, fn)
      sample()
      timer = setInterval(sample, sampleMs)
      timer.unref()
    },
    snapshot() {
      if (timer !== undefined) sample()
      return {
        startedAt,
        elapsedMs: Date.now() - startedAt,
        db: { ...db, total: db.reads + db.writes },
        l1: { ...l1 },
        l2: { ...l2 },
        memory: { ...memory },
      }
    },
    stop,
  }
}
