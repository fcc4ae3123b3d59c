import {
  type CacheTier,
  type ChangeQuery,
  type ChangeRecord,
  type ChangeType,
  InvalidOptionError,
} from '@actor-cache/core'
import { maskValue } from '@actor-cache/security'
import { MASK, type StoredState } from '@actor-cache/state-tracker'
import type { AuditSettings } from '../settings.js'
import type { TrackedNamespace } from './types.js'

/** A record as the audit routes show it: sensitive fields masked, without its log position. */
export type AuditRecord = Omit<ChangeRecord, 'seq'>

/** The record with the configured sensitive fields of its namespace masked (`[REDACTED]`). */
export function maskRecord(record: ChangeRecord, audit: AuditSettings): AuditRecord {
  const { seq: _, ...rest } = record
  const fields = audit.sensitiveFields
  const mask = (v: unknown): unknown =>
    v === null ? null : maskValue(fields as never, record.entityType, v, MASK)
  return { ...rest, oldValue: mask(rest.oldValue), newValue: mask(rest.newValue) }
}

/** A value of `namespace` with its sensitive fields masked. */
export function maskState(namespace: string, value: unknown, audit: AuditSettings): unknown {
  return maskValue(audit.sensitiveFields as never, namespace, value, MASK)
}

/** A point in time given as epoch milliseconds or an ISO 8601 date-time. */
export function parseTime(raw: string | number, name: string): number {
  const ms = typeof raw === 'number' || /^\d{1,15}$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (!Number.isFinite(ms)) {
    throw new InvalidOptionError(
      name,
      `must be epoch milliseconds or an ISO 8601 date-time, got ${JSON.stringify(raw)}`,
    )
  }
  return ms
}

/** The filters of `GET /audit` and `GET /audit/export`, as the query string gives them. */
export interface AuditFilters {
  entityType?: TrackedNamespace
  entityId?: string
  userId?: string
  systemId?: string
  changeType?: ChangeType
  from?: string
  to?: string
  limit?: string
  cursor?: string
}

/** The change-log query of the filters (times parsed, the page size a number). */
export function toChangeQuery(filters: AuditFilters): ChangeQuery {
  const query: ChangeQuery = {}
  for (const field of ['entityType', 'entityId', 'userId', 'systemId', 'changeType'] as const) {
    const value = filters[field]
    if (value !== undefined) Object.assign(query, { [field]: value })
  }
  if (filters.from !== undefined) query.from = parseTime(filters.from, 'from')
  if (filters.to !== undefined) query.to = parseTime(filters.to, 'to')
  if (filters.limit !== undefined) query.limit = Number(filters.limit)
  if (filters.cursor !== undefined) query.cursor = filters.cursor
  return query
}

/** The entity as the store of record holds it, to verify that no write bypassed the log. */
export async function storedState(
  record: CacheTier,
  namespace: TrackedNamespace,
  key: string,
): Promise<StoredState> {
  const entry = await record.namespace(namespace).get(key)
  return entry === undefined
    ? { exists: false }
    : { exists: true, value: entry.value, version: entry.version }
}
