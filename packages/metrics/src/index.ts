export { type AlertRulesOptions, prometheusAlertRules } from './alert-rules.js'
export {
  type ActiveAlert,
  ALERT_NAMES,
  type AlertEvent,
  type AlertName,
  CacheAlerts,
  type CacheAlertsOptions,
  createCacheAlerts,
} from './alerts.js'
export type { BusReset, BusSource } from './bus-health.js'
export {
  CacheMetrics,
  type CacheMetricsOptions,
  createCacheMetrics,
} from './cache-metrics.js'
export {
  type DashboardPanel,
  type GrafanaDashboard,
  type GrafanaDashboardOptions,
  grafanaDashboard,
} from './grafana-dashboard.js'
export {
  type ComponentHealth,
  createHealthCheck,
  HealthCheck,
  type HealthCheckOptions,
  type HealthComponent,
  type HealthReport,
  type HealthStatus,
  type LastError,
} from './health.js'
export { DEFAULT_TIERS, NO_NAMESPACE, OTHER_CODE, OTHER_NAMESPACE } from './labels.js'
export type { MetricsSourceOptions } from './metric-sources.js'
export type { RedisDetails, RedisInfoSource } from './redis-info.js'
export type {
  MemoryTierSource,
  QueueSource,
  TieredCacheSource,
  TieredNamespaceCounters,
  WriteBehindCounters,
} from './sources.js'
