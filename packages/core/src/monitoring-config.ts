import { z } from 'zod'

/**
 * The scalar schemas of the config file (sizes, durations, fractions, counts), handed over by
 * `config.ts` so that this section parses units and words its errors exactly like the others.
 */
export interface MonitoringScalars {
  /** A byte size (`"80MB"`). */
  readonly size: z.ZodType<number>
  /** A duration greater than zero (`"5m"`). */
  readonly duration: z.ZodType<number>
  /** A duration that may be zero (`"0s"`). */
  readonly durationOrZero: z.ZodType<number>
  /** A fraction between 0 and 1 (`0.8` or `"80%"`). */
  readonly fraction: z.ZodType<number>
  /** An integer of at least 1. */
  readonly count: z.ZodType<number>
}

/** Tiered operations whose latency the `slow_operations` alert watches. */
export const MONITORED_OPERATIONS = ['set', 'delete', 'load', 'load_many', 'refresh'] as const

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (i) =>
      `expected one of ${values.map((v) => `"${v}"`).join(', ')}, got ${JSON.stringify(i.input)}`,
  })
}

/**
 * Schema of the optional `monitoring:` block: alert thresholds that `@actor-cache/metrics`
 * evaluates in process and turns into Prometheus alerting rules. Every alert is optional; `for`
 * is how long a condition must hold before the alert fires.
 *
 * ```yaml
 * monitoring:
 *   evaluation_interval: 15s
 *   alerts:
 *     low_hit_ratio: { threshold: 80%, level: overall, window: 5m, for: 1m, min_reads: 100 }
 *     high_memory: { max_size: 80MB, for: 30s }
 *     error_rate: { threshold: 5%, window: 1m, for: 0s }
 *     slow_operations: { quantile: 0.99, threshold: 50ms, window: 5m, for: 1m }
 * ```
 */
export function monitoringSchema(s: MonitoringScalars) {
  const lowHitRatio = z
    .strictObject({
      threshold: s.fraction,
      level: oneOf(['overall', 'l1', 'l2']).prefault('overall'),
      window: s.duration.prefault('5m'),
      for: s.durationOrZero.prefault('0s'),
      min_reads: s.count.prefault(1),
    })
    .transform((v) => ({
      threshold: v.threshold,
      level: v.level,
      window: v.window,
      for: v.for,
      minReads: v.min_reads,
    }))
  const highMemory = z.strictObject({
    max_size: s.size,
    for: s.durationOrZero.prefault('0s'),
  })
  const errorRate = z
    .strictObject({
      threshold: s.fraction,
      window: s.duration.prefault('1m'),
      for: s.durationOrZero.prefault('0s'),
      min_operations: s.count.prefault(1),
    })
    .transform((v) => ({
      threshold: v.threshold,
      window: v.window,
      for: v.for,
      minOperations: v.min_operations,
    }))
  const slowOperations = z.strictObject({
    quantile: s.fraction.refine((q) => q > 0 && q < 1, {
      error: 'must be between 0 and 1 (exclusive)',
    }),
    threshold: s.duration,
    operations: z
      .array(oneOf(MONITORED_OPERATIONS))
      .min(1, { error: 'must name at least one operation' })
      .prefault(['set', 'delete', 'load']),
    window: s.duration.prefault('5m'),
    for: s.durationOrZero.prefault('0s'),
  })
  return z
    .strictObject({
      evaluation_interval: s.duration.prefault('15s'),
      alerts: z
        .strictObject({
          low_hit_ratio: lowHitRatio.optional(),
          high_memory: highMemory.optional(),
          error_rate: errorRate.optional(),
          slow_operations: slowOperations.optional(),
        })
        .prefault({}),
    })
    .transform((v) => ({
      evaluationInterval: v.evaluation_interval,
      alerts: {
        lowHitRatio: v.alerts.low_hit_ratio,
        highMemory:
          v.alerts.high_memory === undefined
            ? undefined
            : { maxSize: v.alerts.high_memory.max_size, for: v.alerts.high_memory.for },
        errorRate: v.alerts.error_rate,
        slowOperations: v.alerts.slow_operations,
      },
    }))
}

/** The `monitoring` section, normalised: durations in ms, sizes in bytes, fractions in [0, 1]. */
export type MonitoringConfig = z.output<ReturnType<typeof monitoringSchema>>
