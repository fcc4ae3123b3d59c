import { InvalidOptionError } from '@actor-cache/core'

/** Options of {@link grafanaDashboard}. */
export interface GrafanaDashboardOptions {
  /** Prefix of the metric names, as given to `createCacheMetrics`. @default 'actor_cache_' */
  prefix?: string
  /** @default 'Actor Cache' */
  title?: string
  /** Dashboard uid. @default 'actor-cache' */
  uid?: string
  /** Range of the `rate` windows. @default '$__rate_interval' */
  rateWindow?: string
}

/** One panel of the dashboard: a time series of PromQL queries. */
export interface DashboardPanel {
  id: number
  type: 'timeseries'
  title: string
  gridPos: { x: number; y: number; w: number; h: number }
  datasource: { type: 'prometheus'; uid: string }
  fieldConfig: { defaults: { unit: string }; overrides: [] }
  targets: { refId: string; expr: string; legendFormat: string }[]
}

/** A Grafana dashboard (JSON model) over the metrics of `createCacheMetrics`. */
export interface GrafanaDashboard {
  uid: string
  title: string
  schemaVersion: number
  time: { from: string; to: string }
  refresh: string
  templating: { list: unknown[] }
  panels: DashboardPanel[]
}

/**
 * A Grafana dashboard of the cache's metrics: hit ratios, reads by tier, loads and their latency,
 * writes, errors by code, L1 memory, evictions, invalidations and write-behind lag, per namespace
 * (a `namespace` variable filters them). Import the JSON in Grafana with a Prometheus data source.
 */
export function grafanaDashboard(options: GrafanaDashboardOptions = {}): GrafanaDashboard {
  const p = options.prefix ?? 'actor_cache_'
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(p)) {
    throw new InvalidOptionError('prefix', `must be a metric name prefix, got ${JSON.stringify(p)}`)
  }
  const w = options.rateWindow ?? '$__rate_interval'
  const ns = 'namespace=~"$namespace"'
  const rate = (metric: string, match = '') =>
    `rate(${p}${metric}{${[ns, match].filter(Boolean).join(',')}}[${w}])`
  const quantile = (q: number, metric: string, by: string, match = '') =>
    `histogram_quantile(${q}, sum by (${by}, le) (${rate(`${metric}_bucket`, match)}))`
  const panels: Omit<DashboardPanel, 'id' | 'gridPos' | 'datasource' | 'type'>[] = [
    panel('Hit ratio (all tiers)', 'percentunit', [
      [
        `sum by (namespace) (${rate('hits_total')}) / sum by (namespace) (${rate('reads_total')})`,
        '{{namespace}}',
      ],
    ]),
    panel('L1 hit ratio', 'percentunit', [
      [
        `sum by (namespace) (${rate('hits_total', 'tier="l1"')}) / sum by (namespace) (${rate('reads_total')})`,
        '{{namespace}}',
      ],
    ]),
    panel('Reads by tier', 'reqps', [
      [`sum by (tier) (${rate('hits_total')})`, '{{tier}}'],
      [`sum(${rate('misses_total')})`, 'miss'],
    ]),
    panel('Loader calls', 'reqps', [
      [`sum by (namespace, outcome) (${rate('loads_total')})`, '{{namespace}} {{outcome}}'],
    ]),
    panel('Load latency', 's', [
      [
        quantile(0.5, 'operation_duration_seconds', 'namespace', 'operation="load"'),
        'p50 {{namespace}}',
      ],
      [
        quantile(0.99, 'operation_duration_seconds', 'namespace', 'operation="load"'),
        'p99 {{namespace}}',
      ],
    ]),
    panel('Write latency (p99)', 's', [
      [
        quantile(
          0.99,
          'operation_duration_seconds',
          'namespace, operation',
          'operation=~"set|delete"',
        ),
        '{{namespace}} {{operation}}',
      ],
    ]),
    panel('Writes', 'ops', [
      [`sum by (strategy, outcome) (${rate('writes_total')})`, '{{strategy}} {{outcome}}'],
    ]),
    panel('Errors by code', 'ops', [
      [`sum by (tier, code) (rate(${p}errors_total[${w}]))`, '{{tier}} {{code}}'],
    ]),
    panel('L1 memory', 'bytes', [
      [`${p}l1_bytes`, 'used {{instance}}'],
      [`${p}l1_max_bytes`, 'budget {{instance}}'],
    ]),
    panel('Evictions and expirations', 'ops', [
      [`sum by (tier) (${rate('evictions_total')})`, 'evicted {{tier}}'],
      [`sum by (tier) (${rate('expirations_total')})`, 'expired {{tier}}'],
    ]),
    panel('Stale served and refresh-ahead', 'ops', [
      [`sum by (namespace) (${rate('stale_served_total')})`, 'stale {{namespace}}'],
      [`sum by (namespace) (${rate('refreshes_total')})`, 'refresh {{namespace}}'],
    ]),
    panel('Invalidations', 'ops', [
      [`sum by (origin, kind) (rate(${p}invalidations_total[${w}]))`, '{{origin}} {{kind}}'],
    ]),
    panel('Write-behind flush lag (p99)', 's', [
      [quantile(0.99, 'flush_lag_seconds', 'namespace'), '{{namespace}}'],
    ]),
    panel('Write-behind queue', 'short', [
      [`sum by (state) (${p}write_behind_queue_items)`, '{{state}}'],
      [`max(${p}write_behind_queue_capacity)`, 'capacity'],
    ]),
  ]
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
  const datasource = { type: 'prometheus' as const, uid: '${datasource}' }
  return {
    uid: options.uid ?? 'actor-cache',
    title: options.title ?? 'Actor Cache',
    schemaVersion: 39,
    time: { from: 'now-1h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Data source' },
        {
          name: 'namespace',
          type: 'query',
          label: 'Namespace',
          datasource,
          query: `label_values(${p}reads_total, namespace)`,
          includeAll: true,
          multi: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
          refresh: 2,
        },
      ],
    },
    panels: panels.map((x, i) => ({
      ...x,
      id: i + 1,
      type: 'timeseries',
      datasource,
      gridPos: { x: (i % 2) * 12, y: Math.floor(i / 2) * 8, w: 12, h: 8 },
    })),
  }
}

function panel(
  title: string,
  unit: string,
  queries: readonly (readonly [expr: string, legend: string])[],
): Omit<DashboardPanel, 'id' | 'gridPos' | 'datasource' | 'type'> {
  return {
    title,
    fieldConfig: { defaults: { unit }, overrides: [] },
    targets: queries.map(([expr, legendFormat], i) => ({
      refId: String.fromCharCode(65 + i),
      expr,
      legendFormat,
    })),
  }
}
