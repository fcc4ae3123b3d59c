import { InvalidOptionError } from '@actor-cache/core'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import {
  BATCH_BUCKETS,
  DEFAULT_DURATION_BUCKETS,
  EventCollector,
  LAG_BUCKETS,
  type Observer,
} from './event-collector.js'
import { DEFAULT_TIERS, NamespaceLabels } from './labels.js'
import type { MemoryTierSource, QueueSource, TieredCacheSource } from './sources.js'
import type { CounterTable } from './tables.js'

/** Options of {@link createCacheMetrics}. */
export interface CacheMetricsOptions {
  /** The prom-client registry to register the metrics in. @default a new `Registry` */
  registry?: Registry
  /** Prefix of every metric name. @default 'actor_cache_' */
  prefix?: string
  /**
   * Namespaces that get their own `namespace` label value; every other one is counted under
   * `_other`. Without a list, the first `maxNamespaces` namespaces seen keep their name.
   */
  namespaces?: readonly string[]
  /** Namespaces labelled by name when `namespaces` is not given. @default 50 */
  maxNamespaces?: number
  /**
   * Tier label of each store name (the `tier` of a store's events).
   * @default { memory: 'l1', redis: 'l2', postgres: 'l3' }
   */
  tiers?: Readonly<Record<string, string>>
  /** Buckets, in seconds, of the duration histograms. @default 0.5 ms to 10 s */
  buckets?: readonly number[]
  /**
   * Also count every store hit, miss, set and delete per tier, with durations. Each store call
   * then publishes an event, L1 hits included: leave it off where L1 hits are the hot path.
   * @default false
   */
  storeEvents?: boolean
  /**
   * A tiered cache whose `stats()` are read at scrape time: its hits (unless `hitEvents`),
   * negative hits and write-behind counters.
   */
  cache?: TieredCacheSource
  /**
   * Count hits from the `actor-cache:tiered:hit` events, per tier as the stores name themselves.
   * Every L1 hit then publishes an event; without them (the default when `cache` is given) the
   * hits come from `cache.stats()` at scrape time, free on the hit path, with L2, L3 used as a
   * cache and unflushed writes together under `tier="l2"`. Hits of other caches of the process
   * are then not counted. @default true without `cache`, false with it
   */
  hitEvents?: boolean
  /** An L1 store whose `stats()` are read at scrape time (bytes, entries, budget). */
  l1?: MemoryTierSource
  /** The write-behind queue whose depth is read at scrape time. */
  queue?: QueueSource
}

/** What the alerts and the health check read from a {@link CacheMetrics}. @internal */
export interface MetricsInternals {
  readonly collector: EventCollector
  readonly labels: NamespaceLabels
  readonly l1: MemoryTierSource | undefined
  readonly queue: QueueSource | undefined
  readonly prefix: string
  /** Brings the hit counters up to date (from the cache's stats when hits are not events). */
  readonly sync: () => void
}

const internals = new WeakMap<CacheMetrics, MetricsInternals>()

/** @internal The data behind `metrics`. */
export function metricsInternals(metrics: CacheMetrics): MetricsInternals {
  const found = internals.get(metrics)
  if (found === undefined)
    throw new InvalidOptionError('metrics', 'must come from createCacheMetrics')
  return found
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/

/**
 * Prometheus metrics of Actor Cache, fed by its `node:diagnostics_channel` events: it subscribes
 * when created and {@link close} unsubscribes. Handlers only bump plain counters; the prom-client
 * objects are filled when the registry is scraped.
 */
export class CacheMetrics {
  /** The registry the metrics are registered in (the one given, or a new one). */
  readonly registry: Registry
  readonly #collector: EventCollector
  readonly #names: string[] = []
  #closed = false

  constructor(options: CacheMetricsOptions = {}) {
    const o = validate(options)
    this.registry = o.registry ?? new Registry()
    const prefix = o.prefix ?? 'actor_cache_'
    const labels = new NamespaceLabels(o.namespaces, o.maxNamespaces ?? 50)
    const buckets = o.buckets ?? DEFAULT_DURATION_BUCKETS
    const registers = [this.registry]
    const histogram = (name: string, help: string, labelNames: string[], b: readonly number[]) => {
      const h = new Histogram({ name: prefix + name, help, labelNames, buckets: [...b], registers })
      this.#names.push(prefix + name)
      return (values: readonly string[], v: number) => h.observe(zip(labelNames, values), v)
    }
    const noop: Observer = () => {}
    const cache = o.cache
    const hitEvents = o.hitEvents ?? cache === undefined
    if (!hitEvents && cache === undefined) {
      throw new InvalidOptionError('hitEvents', 'false needs cache (its stats count the hits)')
    }
    const collector = new EventCollector({
      namespaces: labels,
      tiers: { ...DEFAULT_TIERS, ...o.tiers },
      durationBuckets: buckets,
      storeEvents: o.storeEvents ?? false,
      hitEvents,
      observers: {
        operation: histogram(
          'operation_duration_seconds',
          'Duration of tiered operations: set, delete, load (a loader call for a read), load_many, refresh.',
          ['namespace', 'operation'],
          buckets,
        ),
        flushLag: histogram(
          'flush_lag_seconds',
          'Age of the oldest write of a write-behind batch when the batch ended.',
          ['namespace'],
          LAG_BUCKETS,
        ),
        flushBatch: histogram(
          'flush_batch_size',
          'Writes per namespace in a write-behind batch.',
          ['namespace'],
          BATCH_BUCKETS,
        ),
        store: o.storeEvents
          ? histogram(
              'store_operation_duration_seconds',
              'Duration of store calls that measure it, by tier and operation.',
              ['tier', 'operation'],
              buckets,
            )
          : noop,
      },
    })
    this.#collector = collector
    const sync =
      hitEvents || cache === undefined
        ? () => {}
        : () => collector.syncHits(cache.stats().namespaces)
    sync() // the baseline: hits before now are not counted
    internals.set(this, { collector, labels, l1: o.l1, queue: o.queue, prefix, sync })

    const counter = (name: string, help: string, table: CounterTable) => {
      const labelNames = [...table.labelNames]
      this.#names.push(prefix + name)
      new Counter({
        name: prefix + name,
        help,
        labelNames,
        registers,
        collect() {
          if (table === collector.hits || table === collector.reads) sync()
          this.reset()
          for (const s of table.values()) this.inc(zip(labelNames, s.labels), s.value)
        },
      })
    }
    const c = collector
    counter('reads_total', 'Reads answered: hits, misses and single-key loader values.', c.reads)
    counter('hits_total', 'Reads answered by a tier (record: the store of record).', c.hits)
    counter('misses_total', 'Reads that found nothing anywhere, loader included.', c.misses)
    counter('loads_total', 'Loader calls by purpose (read, refresh) and outcome.', c.loads)
    counter('stale_served_total', 'Copies past their TTL served within grace.', c.stale)
    counter('refreshes_total', 'Refresh-ahead runs started.', c.refreshes)
    counter('writes_total', 'Sets and deletes by strategy and outcome.', c.writes)
    counter('invalidations_total', 'Invalidations applied, by origin and kind.', c.invalidations)
    counter('flushes_total', 'Write-behind batches handled per namespace, by outcome.', c.flushes)
    counter('flushed_writes_total', 'Writes in write-behind batches, by outcome.', c.flushedWrites)
    counter('flush_rejected_total', 'Writes the record refused for good.', c.flushRejected)
    counter('evictions_total', 'Entries evicted for size limits.', c.evictions)
    counter('expirations_total', 'Entries dropped because their TTL passed.', c.expirations)
    counter('errors_total', 'Errors of tiers, loaders and ports, by error code.', c.errors)
    if (o.storeEvents) {
      counter('store_operations_total', 'Store calls by tier and result.', c.storeOperations)
    }

    this.#gauge(
      prefix + 'hit_ratio',
      'Hits / reads since start (l2: of reads L1 missed).',
      ['namespace', 'level'],
      (set) => {
        sync()
        for (const s of c.reads.values()) {
          const [ns] = s.labels as [string]
          const reads = s.value
          if (reads === 0) continue
          const all = c.hits.sum({ name: 'namespace', value: ns })
          const l1 = hitsOf(c.hits, ns, 'l1')
          set({ namespace: ns, level: 'overall' }, all / reads)
          set({ namespace: ns, level: 'l1' }, l1 / reads)
          if (reads > l1)
            set({ namespace: ns, level: 'l2' }, hitsOf(c.hits, ns, 'l2') / (reads - l1))
        }
      },
    )
    this.#sources(prefix, labels, o)
  }

  /** The exposition text of the registry (all its metrics, not only these). */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }

  /** The content type of {@link metrics} for an HTTP response. */
  get contentType(): string {
    return this.registry.contentType
  }

  /**
   * Unsubscribes from every channel and removes these metrics from the registry. It does not
   * close the sources (cache, l1, queue) it reads: their owner does. Idempotent.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#collector.close()
    for (const name of this.#names) this.registry.removeSingleMetric(name)
  }

  #gauge(
    name: string,
    help: string,
    labelNames: string[],
    fill: (set: (labels: Record<string, string>, v: number) => void) => void | Promise<void>,
  ): void {
    this.#names.push(name)
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset()
        await fill((labels, v) => this.set(labels, v))
      },
    })
  }

  #sources(prefix: string, labels: NamespaceLabels, o: CacheMetricsOptions): void {
    const { cache, l1, queue } = o
    if (cache !== undefined) {
      const registers = [this.registry]
      const names = this.#names
      const fromStats = (name: string, help: string, read: (s: StatsOf) => number) => {
        names.push(prefix + name)
        new Counter({
          name: prefix + name,
          help,
          labelNames: ['namespace'],
          registers,
          collect() {
            this.reset()
            for (const [ns, s] of Object.entries(cache.stats().namespaces)) {
              this.inc({ namespace: labels.label(ns) }, read(s))
            }
          },
        })
      }
      fromStats(
        'negative_hits_total',
        'Reads answered by the negative cache.',
        (s) => s.negativeHits,
      )
      const flusher = (name: string, help: string, key: keyof WriteBehindStats) => {
        names.push(prefix + name)
        new Counter({
          name: prefix + name,
          help,
          registers,
          collect() {
            this.reset()
            const wb = cache.stats().writeBehind
            if (wb !== undefined) this.inc(wb[key])
          },
        })
      }
      flusher('write_behind_batches_total', 'Write-behind batches persisted.', 'batches')
      flusher(
        'write_behind_coalesced_total',
        'Writes replaced by a newer one in a batch.',
        'coalesced',
      )
      flusher(
        'write_behind_dead_lettered_total',
        'Writes sent to the dead letters.',
        'deadLettered',
      )
      flusher('write_behind_failures_total', 'Failed write-behind attempts (retried).', 'failures')
    }
    if (l1 !== undefined) {
      this.#gauge(prefix + 'l1_bytes', 'Estimated bytes held by L1.', [], (set) => {
        set({}, l1.stats().bytes)
      })
      this.#gauge(prefix + 'l1_entries', 'Entries held by L1.', [], (set) => {
        set({}, l1.stats().entries)
      })
      this.#gauge(prefix + 'l1_max_bytes', 'Byte budget of L1.', [], (set) => {
        set({}, l1.stats().maxSize)
      })
    }
    if (queue !== undefined) {
      this.#gauge(
        prefix + 'write_behind_queue_items',
        'Writes in the write-behind queue: ready, or claimed and in flight.',
        ['state'],
        async (set) => {
          const s = await queue.stats()
          set({ state: 'ready' }, s.ready)
          set({ state: 'in_flight' }, s.inFlight)
        },
      )
      this.#gauge(
        prefix + 'write_behind_queue_capacity',
        'Most writes the write-behind queue holds.',
        [],
        async (set) => set({}, (await queue.stats()).capacity),
      )
    }
  }
}

type StatsOf = ReturnType<TieredCacheSource['stats']>['namespaces'][string]
type WriteBehindStats = NonNullable<ReturnType<TieredCacheSource['stats']>['writeBehind']>

function hitsOf(hits: CounterTable, namespace: string, tier: string): number {
  let n = 0
  for (const s of hits.values()) if (s.labels[0] === namespace && s.labels[1] === tier) n += s.value
  return n
}

function zip(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {}
  for (let i = 0; i < names.length; i++) labels[names[i] as string] = values[i] as string
  return labels
}

function validate(o: CacheMetricsOptions): CacheMetricsOptions {
  if (typeof o !== 'object' || o === null)
    throw new InvalidOptionError('options', 'must be an object')
  if (o.registry !== undefined && typeof (o.registry as Partial<Registry>).metrics !== 'function') {
    throw new InvalidOptionError('registry', 'must be a prom-client Registry')
  }
  if (o.prefix !== undefined && (typeof o.prefix !== 'string' || !NAME_RE.test(o.prefix))) {
    throw new InvalidOptionError('prefix', `must match ${NAME_RE}, got ${JSON.stringify(o.prefix)}`)
  }
  if (
    o.namespaces !== undefined &&
    (!Array.isArray(o.namespaces) || o.namespaces.some((n) => typeof n !== 'string'))
  ) {
    throw new InvalidOptionError('namespaces', 'must be a list of namespace names')
  }
  if (
    o.maxNamespaces !== undefined &&
    (!Number.isSafeInteger(o.maxNamespaces) || o.maxNamespaces < 0)
  ) {
    throw new InvalidOptionError(
      'maxNamespaces',
      `must be a non-negative integer, got ${String(o.maxNamespaces)}`,
    )
  }
  if (o.buckets !== undefined) {
    const b = o.buckets
    if (
      !Array.isArray(b) ||
      b.length === 0 ||
      b.some(
        (v, i) =>
          typeof v !== 'number' ||
          !(v > 0) ||
          !Number.isFinite(v) ||
          (i > 0 && v <= (b[i - 1] as number)),
      )
    ) {
      throw new InvalidOptionError('buckets', 'must be increasing positive numbers of seconds')
    }
  }
  for (const name of ['cache', 'l1', 'queue'] as const) {
    const source = o[name] as { stats?: unknown } | undefined
    if (source !== undefined && typeof source?.stats !== 'function') {
      throw new InvalidOptionError(name, 'must have a stats method')
    }
  }
  return o
}

/**
 * Subscribes to Actor Cache's events and exports them as Prometheus metrics in `registry` (or a
 * new one). Call {@link CacheMetrics.close} to unsubscribe.
 *
 * @example
 * const metrics = createCacheMetrics({ namespaces: ['primary_core'], cache, l1 })
 * const text = await metrics.metrics() // Prometheus exposition
 * metrics.close()
 */
export function createCacheMetrics(options: CacheMetricsOptions = {}): CacheMetrics {
  return new CacheMetrics(options)
}
