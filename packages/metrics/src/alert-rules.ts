import { InvalidOptionError, type MonitoringConfig } from '@actor-cache/core'
import { ALERT_NAMES } from './alerts.js'

/** Options of {@link prometheusAlertRules}. */
export interface AlertRulesOptions {
  /** Prefix of the metric names, as given to `createCacheMetrics`. @default 'actor_cache_' */
  prefix?: string
  /** Name of the rule group. @default 'actor-cache' */
  group?: string
  /** `severity` label of every alert. @default 'warning' */
  severity?: string
}

/** A Prometheus duration (`5m`, `30s`, `250ms`). */
function promDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${Math.round(ms)}ms`
}

const q = (s: string): string => JSON.stringify(s)
/** A fraction as a percentage without float noise (0.07 → "7"). */
const percent = (v: number): string => String(Number((v * 100).toFixed(6)))

/**
 * The alerts of the config's `monitoring` block as a Prometheus alerting-rules file (YAML), over
 * the metrics `createCacheMetrics` exports: the same conditions, windows and `for` as the
 * in-process alerts, evaluated by Prometheus across every instance instead.
 */
export function prometheusAlertRules(
  monitoring: MonitoringConfig,
  options: AlertRulesOptions = {},
): string {
  if (typeof monitoring?.alerts !== 'object') {
    throw new InvalidOptionError(
      'monitoring',
      'must be the parsed monitoring section of the config',
    )
  }
  const p = options.prefix ?? 'actor_cache_'
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(p)) {
    throw new InvalidOptionError('prefix', `must be a metric name prefix, got ${JSON.stringify(p)}`)
  }
  const severity = options.severity ?? 'warning'
  const rules: string[] = []
  const rule = (alert: string, expr: string, forMs: number, summary: string) => {
    rules.push(
      [
        `      - alert: ${alert}`,
        `        expr: ${q(expr)}`,
        `        for: ${promDuration(forMs)}`,
        '        labels:',
        `          severity: ${q(severity)}`,
        '        annotations:',
        `          summary: ${q(summary)}`,
      ].join('\n'),
    )
  }
  const a = monitoring.alerts
  if (a.lowHitRatio !== undefined) {
    const { window, threshold, level, minReads } = a.lowHitRatio
    const w = promDuration(window)
    const rate = (metric: string, match = '') =>
      `sum by (namespace) (increase(${p}${metric}${match}[${w}]))`
    // a namespace without hits of a tier has no such series: count it as zero, not as absent
    const zero = `${rate('reads_total')} * 0`
    const hits = (match: string) => `(${rate('hits_total', match)} or ${zero})`
    const reads = rate('reads_total')
    const ratio =
      level === 'overall'
        ? `${hits('')} / ${reads}`
        : level === 'l1'
          ? `${hits('{tier="l1"}')} / ${reads}`
          : `${hits('{tier="l2"}')} / (${reads} - ${hits('{tier="l1"}')})`
    rule(
      ALERT_NAMES.lowHitRatio,
      `(${ratio}) < ${threshold} and ${reads} >= ${minReads}`,
      a.lowHitRatio.for,
      `${level} hit ratio of {{ $labels.namespace }} below ${percent(threshold)}% over ${w}`,
    )
  }
  if (a.highMemory !== undefined) {
    rule(
      ALERT_NAMES.highMemory,
      `${p}l1_bytes > ${a.highMemory.maxSize}`,
      a.highMemory.for,
      `L1 holds more than ${a.highMemory.maxSize} bytes`,
    )
  }
  if (a.errorRate !== undefined) {
    const { window, threshold, minOperations } = a.errorRate
    const w = promDuration(window)
    const ops = `(sum(increase(${p}reads_total[${w}])) + (sum(increase(${p}writes_total[${w}])) or vector(0)))`
    rule(
      ALERT_NAMES.errorRate,
      `sum(increase(${p}errors_total[${w}])) / ${ops} > ${threshold} and ${ops} >= ${minOperations}`,
      a.errorRate.for,
      `more than ${percent(threshold)}% of cache operations failed over ${w}`,
    )
  }
  if (a.slowOperations !== undefined) {
    const { window, threshold, quantile, operations } = a.slowOperations
    const w = promDuration(window)
    const match = `{operation=~${q(operations.join('|'))}}`
    rule(
      ALERT_NAMES.slowOperations,
      `histogram_quantile(${quantile}, sum by (namespace, operation, le) (rate(${p}operation_duration_seconds_bucket${match}[${w}]))) > ${threshold / 1000}`,
      a.slowOperations.for,
      `p${percent(quantile)} of {{ $labels.operation }} in {{ $labels.namespace }} above ${threshold} ms over ${w}`,
    )
  }
  const group = options.group ?? 'actor-cache'
  return `groups:\n  - name: ${q(group)}\n    rules:${rules.length === 0 ? ' []' : `\n${rules.join('\n')}`}\n`
}
