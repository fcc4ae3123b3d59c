import { type ChangeRecord, InvalidOptionError } from '@actor-cache/core'

/** Sensitive fields per entity type: dotted paths into the values (`account.email`). */
export type SensitiveFields = Readonly<Record<string, readonly string[]>>

/** What a masked field reads as. */
export const MASK = '[REDACTED]'

/** Checks the sensitive-field config, before any I/O. */
export function checkSensitiveFields(fields: unknown): SensitiveFields {
  if (fields === undefined) return {}
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw new InvalidOptionError('sensitiveFields', 'must map entity types to lists of field paths')
  }
  for (const [type, paths] of Object.entries(fields)) {
    const ok =
      Array.isArray(paths) &&
      paths.every((p) => typeof p === 'string' && /^[^.\s]+(\.[^.\s]+)*$/.test(p))
    if (!ok) {
      throw new InvalidOptionError(
        `sensitiveFields.${type}`,
        'must be a list of dotted field paths like "email" or "account.email"',
      )
    }
  }
  return fields as SensitiveFields
}

function maskPath(value: unknown, path: readonly string[]): unknown {
  if (typeof value !== 'object' || value === null || path.length === 0) return value
  const [head, ...rest] = path as [string, ...string[]]
  if (!Object.hasOwn(value, head)) return value
  const copy: Record<string, unknown> = Array.isArray(value) ? ([...value] as never) : { ...value }
  copy[head] = rest.length === 0 ? MASK : maskPath(copy[head], rest)
  return copy
}

/** The value with every sensitive path replaced by {@link MASK} (a copy; the input is kept). */
export function maskValue(value: unknown, paths: readonly string[] | undefined): unknown {
  if (paths === undefined || value === null || value === undefined) return value
  let out: unknown = value
  for (const p of paths) out = maskPath(out, p.split('.'))
  return out
}

/** The record with its old and new values masked for its entity type. */
export function maskRecord(record: ChangeRecord, fields: SensitiveFields): ChangeRecord {
  const paths = Object.hasOwn(fields, record.entityType) ? fields[record.entityType] : undefined
  if (paths === undefined || paths.length === 0) return record
  return {
    ...record,
    oldValue: maskValue(record.oldValue, paths),
    newValue: maskValue(record.newValue, paths),
  }
}
