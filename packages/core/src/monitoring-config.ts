import { z } from 'zod'
import { duration, fraction, int, oneOf, size } from './config-fields.js'

const positiveDuration = duration()
const durationOrZero = duration({ allowZero: true })
const count = int(1)

/** Tiered operations whose latency the `slow_operations` alert watches. */
export const MONITORED_OPERATIONS = ['set', 'delete', 'load', 'load_many', 'refresh'] as const

const lowHitRatio = z
  .strictObject({
    threshold: fraction,
    level: oneOf(['overall', 'l1', 'l2']).prefault('overall'),
    window: positiveDuration.prefault('5m'),
    for: durationOrZero.prefault('0s'),
    min_reads: count.prefault(1),
  })
  .transform((v) => ({
    threshold: v.threshold,
    level: v.level,
    window: v.window,
    for: v.for,
    minReads: v.min_reads,
  }))
const highMemory = z.strictObject({
  max_size: size,
  for: durationOrZero.prefault('0s'),
})
const errorRate = z
  .strictObject({
    threshold: fraction,
    window: positiveDuration.prefault('1m'),
    for: durationOrZero.prefault('0s'),
    min_operations: count.prefault(1),
  })
  .transform((v) => ({
    threshold: v.threshold,
    window: v.window,
    for: v.for,
    minOperations: v.min_operations,
  }))
const slowOperations = z.strictObject({
  quantile: fraction.refine((q) => q > 0 && q < 1, {
    error: 'must be between 0 and 1 (exclusive)',
  }),
  threshold: positiveDuration,
  operations: z
    .array(oneOf(MONITORED_OPERATIONS))
    .min(1, { error: 'must name at least one operation' })
    .prefault(['set', 'delete', 'load']),
  window: positiveDuration.prefault('5m'),
  for: durationOrZero.prefault('0s'),
})
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
export const monitoringSchema = z
  .strictObject({
    evaluation_interval: positiveDuration.prefault('15s'),
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

/** The `monitoring` section, normalised: durations in ms, sizes in bytes, fractions in [0, 1]. */
export type MonitoringConfig = z.output<typeof monitoringSchema>
