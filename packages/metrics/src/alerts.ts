import { InvalidOptionError, type MonitoringConfig } from '@actor-cache/core'
import { type CacheMetrics, metricsInternals } from './cache-metrics.js'
import type { EventCollector } from './event-collector.js'
import type { MemoryTierSource } from './sources.js'
import { SampleWindow } from './window.js'

/** Names of the alerts, shared with the generated Prometheus rules. */
export const ALERT_NAMES = {
  lowHitRatio: 'ActorCacheLowHitRatio',
  highMemory: 'ActorCacheHighMemory',
  errorRate: 'ActorCacheErrorRate',
  slowOperations: 'ActorCacheSlowOperations',
} as const

export type AlertName = (typeof ALERT_NAMES)[keyof typeof ALERT_NAMES]

/**
 * An alert that started firing or resolved. `value` and `threshold` are in the unit of the
 * config: a ratio for hit ratio and error rate, bytes for memory, ms for slow operations.
 */
export interface AlertEvent {
  name: AlertName
  state: 'firing' | 'resolved'
  /** `namespace` (hit ratio, slow operations), `operation` (slow operations), `level` (hit ratio). */
  labels: Readonly<Record<string, string>>
  value: number
  threshold: number
  /** When the condition started to hold (epoch ms, the alerts' clock). */
  since: number
  /** When this evaluation ran. */
  at: number
  summary: string
}

/** An alert whose condition holds now: `pending` until it has held for its `for`. */
export interface ActiveAlert {
  name: AlertName
  state: 'pending' | 'firing'
  labels: Readonly<Record<string, string>>
  value: number
  threshold: number
  since: number
}

/** Options of {@link createCacheAlerts}. */
export interface CacheAlertsOptions {
  /** The metrics whose counters the alerts read (`createCacheMetrics`; `l1` for the memory alert). */
  metrics: CacheMetrics
  /** The config's `monitoring` section (`parseCacheConfigYaml(...).monitoring`). */
  monitoring: MonitoringConfig
  /** Clock in epoch ms. @default Date.now */
  now?: () => number
}

interface Condition {
  name: AlertName
  labels: Record<string, string>
  value: number
  threshold: number
  holds: boolean
  summary: string
}

interface State {
  since: number
  firing: boolean
  last: Condition
}

type Listener = (event: AlertEvent) => void

const SEP = '\u0000'

/**
 * Evaluates the `monitoring` alerts in process over the metrics' counters, each over its window,
 * and reports each alert that starts firing (its condition held for `for`) or resolves. Call
 * {@link evaluate} yourself, or {@link start} a timer at `evaluation_interval`.
 */
export class CacheAlerts {
  readonly #collector: EventCollector
  readonly #sync: () => void
  readonly #l1: MemoryTierSource | undefined
  readonly #config: MonitoringConfig
  readonly #now: () => number
  readonly #window: SampleWindow
  readonly #states = new Map<string, State>()
  readonly #listeners = new Set<Listener>()
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: CacheAlertsOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', 'must be an object')
    }
    const internals = metricsInternals(options.metrics)
    const config = options.monitoring
    if (typeof config?.alerts !== 'object' || typeof config.evaluationInterval !== 'number') {
      throw new InvalidOptionError(
        'monitoring',
        'must be the parsed monitoring section of the config',
      )
    }
    if (config.alerts.highMemory !== undefined && internals.l1 === undefined) {
      throw new InvalidOptionError(
        'monitoring',
        'alerts.high_memory needs the L1 store: pass l1 to createCacheMetrics',
      )
    }
    this.#collector = internals.collector
    this.#sync = internals.sync
    this.#l1 = internals.l1
    this.#config = config
    this.#now = options.now ?? Date.now
    const a = config.alerts
    const windows = [a.lowHitRatio?.window, a.errorRate?.window, a.slowOperations?.window]
    this.#window = new SampleWindow(Math.max(0, ...windows.filter((w) => w !== undefined)))
  }

  /** Calls `listener` with every alert that fires or resolves; returns the unsubscribe function. */
  on(listener: Listener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Alerts whose condition holds now, pending or firing. */
  active(): ActiveAlert[] {
    return [...this.#states.values()].map((s) => ({
      name: s.last.name,
      state: s.firing ? 'firing' : 'pending',
      labels: s.last.labels,
      value: s.last.value,
      threshold: s.last.threshold,
      since: s.since,
    }))
  }

  /** Evaluates every alert now; returns (and reports to listeners) the ones that fired or resolved. */
  evaluate(): AlertEvent[] {
    const at = this.#now()
    this.#window.add({ at, counters: this.#read() })
    const conditions = this.#conditions()
    const events: AlertEvent[] = []
    const seen = new Set<string>()
    for (const c of conditions) {
      const id = [c.name, ...Object.entries(c.labels).flat()].join(SEP)
      seen.add(id)
      const state = this.#states.get(id)
      if (!c.holds) {
        if (state?.firing) events.push(event(c, 'resolved', state.since, at))
        this.#states.delete(id)
        continue
      }
      const s = state ?? { since: at, firing: false, last: c }
      s.last = c
      this.#states.set(id, s)
      if (!s.firing && at - s.since >= this.#for(c.name)) {
        s.firing = true
        events.push(event(c, 'firing', s.since, at))
      }
    }
    // series that disappeared (no longer evaluated) resolve
    for (const [id, s] of this.#states) {
      if (seen.has(id)) continue
      if (s.firing) events.push(event(s.last, 'resolved', s.since, at))
      this.#states.delete(id)
    }
    for (const e of events) {
      for (const l of this.#listeners) {
        try {
          l(e)
        } catch {
          // a listener's failure must not stop the evaluation or the other listeners
        }
      }
    }
    return events
  }

  /** Evaluates every `evaluation_interval` (the timer does not keep the process alive). */
  start(): this {
    if (this.#closed) throw new InvalidOptionError('alerts', 'are closed')
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.evaluate(), this.#config.evaluationInterval)
      this.#timer.unref()
    }
    return this
  }

  /** Stops the timer and forgets the listeners. Idempotent. */
  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#listeners.clear()
  }

  #for(name: AlertName): number {
    const a = this.#config.alerts
    switch (name) {
      case ALERT_NAMES.lowHitRatio:
        return a.lowHitRatio?.for ?? 0
      case ALERT_NAMES.highMemory:
        return a.highMemory?.for ?? 0
      case ALERT_NAMES.errorRate:
        return a.errorRate?.for ?? 0
      default:
        return a.slowOperations?.for ?? 0
    }
  }

  /** The counters the alerts need, as one reading. */
  #read(): Map<string, number> {
    this.#sync()
    const c = this.#collector
    const m = new Map<string, number>()
    const add = (id: string, v: number) => m.set(id, (m.get(id) ?? 0) + v)
    for (const s of c.reads.values()) {
      add(`reads${SEP}${s.labels[0]}`, s.value)
      add('ops', s.value)
    }
    for (const s of c.writes.values()) add('ops', s.value)
    for (const s of c.hits.values()) {
      add(`hits${SEP}${s.labels[0]}${SEP}${s.labels[1]}`, s.value)
      add(`hits${SEP}${s.labels[0]}`, s.value)
    }
    for (const s of c.errors.values()) add('errors', s.value)
    for (const s of c.operationDurations.values()) {
      const base = `lat${SEP}${s.labels[0]}${SEP}${s.labels[1]}`
      let cumulative = 0
      s.counts.forEach((n, i) => {
        cumulative += n
        add(`${base}${SEP}${i}`, cumulative)
      })
    }
    return m
  }

  #conditions(): Condition[] {
    const a = this.#config.alerts
    const w = this.#window
    const out: Condition[] = []
    const hr = a.lowHitRatio
    if (hr !== undefined) {
      for (const s of this.#collector.reads.values()) {
        const ns = s.labels[0] as string
        const reads = w.increase(`reads${SEP}${ns}`, hr.window)
        const l1 = w.increase(`hits${SEP}${ns}${SEP}l1`, hr.window)
        let value: number | undefined
        if (hr.level === 'overall') value = w.increase(`hits${SEP}${ns}`, hr.window) / reads
        else if (hr.level === 'l1') value = l1 / reads
        else if (reads > l1) value = w.increase(`hits${SEP}${ns}${SEP}l2`, hr.window) / (reads - l1)
        const holds = reads >= hr.minReads && value !== undefined && value < hr.threshold
        out.push({
          name: ALERT_NAMES.lowHitRatio,
          labels: { namespace: ns, level: hr.level },
          value: value ?? Number.NaN,
          threshold: hr.threshold,
          holds,
          summary: `${hr.level} hit ratio of ${ns} ${pct(value)} below ${pct(hr.threshold)} over ${dur(hr.window)}`,
        })
      }
    }
    const mem = a.highMemory
    if (mem !== undefined && this.#l1 !== undefined) {
      const bytes = this.#l1.stats().bytes
      out.push({
        name: ALERT_NAMES.highMemory,
        labels: {},
        value: bytes,
        threshold: mem.maxSize,
        holds: bytes > mem.maxSize,
        summary: `L1 holds ${bytes} bytes, above ${mem.maxSize}`,
      })
    }
    const er = a.errorRate
    if (er !== undefined) {
      const ops = w.increase('ops', er.window)
      const errors = w.increase('errors', er.window)
      const value = ops > 0 ? errors / ops : 0
      out.push({
        name: ALERT_NAMES.errorRate,
        labels: {},
        value,
        threshold: er.threshold,
        holds: ops >= er.minOperations && value > er.threshold,
        summary: `${errors} errors in ${ops} operations (${pct(value)}) over ${dur(er.window)}, above ${pct(er.threshold)}`,
      })
    }
    const so = a.slowOperations
    if (so !== undefined) {
      const bounds = this.#collector.operationDurations.bounds
      for (const s of this.#collector.operationDurations.values()) {
        const [ns, op] = s.labels as [string, string]
        if (!(so.operations as readonly string[]).includes(op)) continue
        const base = `lat${SEP}${ns}${SEP}${op}`
        const cumulative = s.counts.map((_, i) => w.increase(`${base}${SEP}${i}`, so.window))
        const seconds = quantile(so.quantile, bounds, cumulative)
        const ms = seconds === undefined ? Number.NaN : seconds * 1000
        out.push({
          name: ALERT_NAMES.slowOperations,
          labels: { namespace: ns, operation: op },
          value: ms,
          threshold: so.threshold,
          holds: seconds !== undefined && ms > so.threshold,
          summary: `p${so.quantile * 100} of ${op} in ${ns} ${Math.round(ms)} ms over ${dur(so.window)}, above ${so.threshold} ms`,
        })
      }
    }
    return out
  }
}

/**
 * The `q` quantile of a histogram given as cumulative counts per bucket (the last one +Inf), by
 * linear interpolation within the bucket like PromQL's `histogram_quantile`; undefined when empty.
 */
export function quantile(
  q: number,
  bounds: readonly number[],
  cumulative: readonly number[],
): number | undefined {
  const total = cumulative.at(-1) ?? 0
  if (total <= 0) return undefined
  const rank = q * total
  for (let i = 0; i < cumulative.length; i++) {
    const c = cumulative[i] as number
    if (c < rank) continue
    if (i >= bounds.length) return bounds.at(-1)
    const lower = i === 0 ? 0 : (bounds[i - 1] as number)
    const before = i === 0 ? 0 : (cumulative[i - 1] as number)
    const upper = bounds[i] as number
    return c === before ? upper : lower + ((upper - lower) * (rank - before)) / (c - before)
  }
  return bounds.at(-1)
}

function event(c: Condition, state: AlertEvent['state'], since: number, at: number): AlertEvent {
  return {
    name: c.name,
    state,
    labels: c.labels,
    value: c.value,
    threshold: c.threshold,
    since,
    at,
    summary: c.summary,
  }
}

function pct(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? 'n/a' : `${Math.round(v * 1000) / 10}%`
}

function dur(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/**
 * Alerts of the config's `monitoring` block over `metrics`.
 * @example
 * const alerts = createCacheAlerts({ metrics, monitoring: config.monitoring }).start()
 * alerts.on((e) => log.warn(`${e.name} ${e.state}: ${e.summary}`))
 */
export function createCacheAlerts(options: CacheAlertsOptions): CacheAlerts {
  return new CacheAlerts(options)
}
