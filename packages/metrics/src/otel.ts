/**
 * OpenTelemetry metrics of Actor Cache: `@actor-cache/metrics/otel`. Only types come from
 * `@opentelemetry/api` (an optional peer): the meter is the user's, so nothing here loads the API
 * at run time, and neither this entry nor the main one needs it (or prom-client) installed.
 */

import { InvalidOptionError } from '@actor-cache/core'
import type {
  Attributes,
  BatchObservableResult,
  Meter,
  Observable,
  ObservableCounter,
  ObservableGauge,
} from '@opentelemetry/api'
import type { EventCollector, Observer } from './event-collector.js'
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

export type { MetricsSourceOptions } from './metric-sources.js'
export type { MemoryTierSource, QueueSource, TieredCacheSource } from './sources.js'

/** Options of {@link createOtelMetrics}. */
export interface OtelMetricsOptions extends MetricsSourceOptions {
  /** The meter the instruments are created with (`metrics.getMeter('actor-cache')`). */
  meter: Meter
  /** Prefix of every instrument name. @default 'actor_cache.' */
  prefix?: string
}

/** One observable instrument and how to read its values at collection time. */
interface Watched {
  readonly instrument: Observable
  readonly read: () => Reading[] | Promise<Reading[]>
}

const NAME_RE = /^[a-zA-Z][-_./a-zA-Z0-9]*$/

/**
 * The series of `CacheMetrics` recorded as OpenTelemetry instruments, fed by the same
 * `node:diagnostics_channel` events (the same collector): counters and gauges are observable
 * instruments read when the meter's reader collects, durations, flush lag and batch sizes are
 * histograms recorded as events arrive. {@link close} unsubscribes.
 */
export class OtelMetrics {
  readonly #collector: EventCollector
  readonly #meter: Meter
  readonly #callback: (result: BatchObservableResult) => Promise<void>
  readonly #observables: Observable[]
  #closed = false

  constructor(options: OtelMetricsOptions) {
    const o = validate(options)
    const meter = o.meter
    const prefix = o.prefix ?? 'actor_cache.'
    const buckets = durationBuckets(o)
    const observers = {} as Record<keyof HistogramObservers, Observer>
    for (const spec of HISTOGRAMS) {
      if ((spec.storeEvents && !o.storeEvents) || (spec.streamEvents && !o.streamEvents)) {
        observers[spec.observer] = () => {}
        continue
      }
      const histogram = meter.createHistogram(prefix + spec.name, {
        description: spec.help,
        unit: spec.unit,
        advice: { explicitBucketBoundaries: [...(spec.buckets ?? buckets)] },
      })
      const labelNames = spec.labelNames
      observers[spec.observer] = (values, v) => histogram.record(v, zip(labelNames, values))
    }
    const { collector, labels, storeEvents, streamEvents, sync } = createMetricSources(o, observers)
    this.#collector = collector
    this.#meter = meter

    const watched: Watched[] = []
    const counter = (name: string, help: string): ObservableCounter =>
      meter.createObservableCounter(prefix + name, { description: help })
    const gauge = (name: string, help: string): ObservableGauge =>
      meter.createObservableGauge(prefix + name, { description: help })
    for (const spec of COUNTERS) {
      if (spec.storeEvents && !storeEvents) continue
      if (spec.streamEvents && !streamEvents) continue
      const table = spec.table(collector)
      const read = () =>
        Array.from(table.values(), (s) => ({
          labels: zip(table.labelNames, s.labels),
          value: s.value,
        }))
      watched.push({ instrument: counter(spec.name, spec.help), read })
    }
    watched.push({
      instrument: gauge('hit_ratio', 'Hits / reads since start (l2: of reads L1 missed).'),
      read: () => hitRatioReadings(collector),
    })
    if (streamEvents) {
      for (const g of STREAM_GAUGES) {
        watched.push({ instrument: gauge(g.name, g.help), read: () => g.read(collector) })
      }
    }
    const { cache, l1, queue } = o
    if (cache !== undefined) {
      for (const spec of STATS_COUNTERS) {
        watched.push({
          instrument: counter(spec.name, spec.help),
          read: () => spec.read(cache, labels),
        })
      }
    }
    if (l1 !== undefined) {
      for (const g of L1_GAUGES) {
        watched.push({ instrument: gauge(g.name, g.help), read: () => g.read(l1) })
      }
    }
    if (queue !== undefined) {
      for (const g of QUEUE_GAUGES) {
        watched.push({ instrument: gauge(g.name, g.help), read: () => g.read(queue) })
      }
    }
    this.#observables = watched.map((w) => w.instrument)
    // one callback per collection: the hit counters are brought up to date once for all series
    this.#callback = async (result) => {
      sync()
      for (const w of watched) {
        for (const r of await w.read())
          result.observe(w.instrument, r.value, r.labels as Attributes)
      }
    }
    meter.addBatchObservableCallback(this.#callback, this.#observables)
  }

  /**
   * Unsubscribes from every channel and stops observing: later collections report none of these
   * observable series. The histograms stay in the meter (OpenTelemetry cannot remove an
   * instrument) but receive nothing more. It closes neither the meter nor the sources. Idempotent.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#collector.close()
    this.#meter.removeBatchObservableCallback(this.#callback, this.#observables)
  }
}

function validate(o: OtelMetricsOptions): OtelMetricsOptions {
  if (typeof o !== 'object' || o === null) {
    throw new InvalidOptionError('options', 'must be an object')
  }
  const meter = o.meter as Partial<Meter> | undefined
  if (
    typeof meter?.createObservableCounter !== 'function' ||
    typeof meter.addBatchObservableCallback !== 'function'
  ) {
    throw new InvalidOptionError('meter', 'must be an OpenTelemetry Meter (metrics.getMeter(name))')
  }
  if (o.prefix !== undefined && (typeof o.prefix !== 'string' || !NAME_RE.test(o.prefix))) {
    throw new InvalidOptionError('prefix', `must match ${NAME_RE}, got ${JSON.stringify(o.prefix)}`)
  }
  validateSourceOptions(o)
  return o
}

/**
 * Subscribes to Actor Cache's events and records them with an OpenTelemetry `meter`: the same
 * series as `createCacheMetrics`, named `actor_cache.<name>`. Call {@link OtelMetrics.close}
 * to unsubscribe.
 *
 * @example
 * import { metrics } from '@opentelemetry/api'
 * import { createOtelMetrics } from '@actor-cache/metrics/otel'
 * const otel = createOtelMetrics({ meter: metrics.getMeter('actor-cache'), cache, l1 })
 * otel.close()
 */
export function createOtelMetrics(options: OtelMetricsOptions): OtelMetrics {
  return new OtelMetrics(options)
}
