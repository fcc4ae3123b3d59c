import { InvalidOptionError } from '@actor-cache/core'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { EventCollector, Observer } from './event-collector.js'
import type { NamespaceLabels } from './labels.js'
import {
  createMetricSources,
  durationBuckets,
  type HistogramObservers,
  type MetricsSourceOptions,
  validateSourceOptions,
} from './metric-sources.js'
import {
  COUNTERS,
  HISTOGRAMS,
  hitRatioReadings,
  L1_GAUGES,
  QUEUE_GAUGES,
  type Reading,
  STATS_COUNTERS,
  STREAM_GAUGES,
  zip,
} from './metric-specs.js'
import type { MemoryTierSource, QueueSource } from './sources.js'

/** Options of {@link createCacheMetrics}. */
export interface CacheMetricsOptions extends MetricsSourceOptions {
  /** The prom-client registry to register the metrics in. @default a new `Registry` */
  registry?: Registry
  /** Prefix of every metric name. @default 'actor_cache_' */
  prefix?: string
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
    const registers = [this.registry]
    const buckets = durationBuckets(o)
    const observers = {} as Record<keyof HistogramObservers, Observer>
    for (const spec of HISTOGRAMS) {
      if ((spec.storeEvents && !o.storeEvents) || (spec.streamEvents && !o.streamEvents)) {
        observers[spec.observer] = () => {}
        continue
      }
      const name = prefix + spec.name + (spec.unit === 's' ? '_seconds' : '')
      const labelNames = [...spec.labelNames]
      const h = new Histogram({
        name,
        help: spec.help,
        labelNames,
        buckets: [...(spec.buckets ?? buckets)],
        registers,
      })
      this.#names.push(name)
      observers[spec.observer] = (values, v) => h.observe(zip(labelNames, values), v)
    }
    const sources = createMetricSources(o, observers)
    const { collector, labels, sync } = sources
    this.#collector = collector
    internals.set(this, { collector, labels, l1: o.l1, queue: o.queue, prefix, sync })

    for (const spec of COUNTERS) {
      if (spec.storeEvents && !sources.storeEvents) continue
      if (spec.streamEvents && !sources.streamEvents) continue
      const table = spec.table(collector)
      const labelNames = [...table.labelNames]
      this.#names.push(`${prefix + spec.name}_total`)
      new Counter({
        name: `${prefix + spec.name}_total`,
        help: spec.help,
        labelNames,
        registers,
        collect() {
          if (table === collector.hits || table === collector.reads) sync()
          this.reset()
          for (const s of table.values()) this.inc(zip(labelNames, s.labels), s.value)
        },
      })
    }
    this.#gauge(
      `${prefix}hit_ratio`,
      'Hits / reads since start (l2: of reads L1 missed).',
      ['namespace', 'level'],
      () => {
        sync()
        return hitRatioReadings(collector)
      },
    )
    if (sources.streamEvents) {
      for (const g of STREAM_GAUGES)
        this.#gauge(prefix + g.name, g.help, g.labelNames, () => g.read(collector))
    }
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
    labelNames: readonly string[],
    read: () => Reading[] | Promise<Reading[]>,
  ): void {
    this.#names.push(name)
    new Gauge({
      name,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      async collect() {
        this.reset()
        for (const r of await read()) this.set(r.labels, r.value)
      },
    })
  }

  #sources(prefix: string, labels: NamespaceLabels, o: CacheMetricsOptions): void {
    const { cache, l1, queue } = o
    if (cache !== undefined) {
      for (const spec of STATS_COUNTERS) {
        const name = `${prefix + spec.name}_total`
        this.#names.push(name)
        const readings = () => spec.read(cache, labels)
        new Counter({
          name,
          help: spec.help,
          labelNames: [...spec.labelNames],
          registers: [this.registry],
          collect() {
            this.reset()
            for (const r of readings()) this.inc(r.labels, r.value)
          },
        })
      }
    }
    if (l1 !== undefined) {
      for (const g of L1_GAUGES)
        this.#gauge(prefix + g.name, g.help, g.labelNames, () => g.read(l1))
    }
    if (queue !== undefined) {
      for (const g of QUEUE_GAUGES) {
        this.#gauge(prefix + g.name, g.help, g.labelNames, () => g.read(queue))
      }
    }
  }
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
  validateSourceOptions(o)
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
