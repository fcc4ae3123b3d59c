import type { ChangeLog, ChangeQuery, ChangeRecord, Serializer } from '@actor-cache/core'
import { hashableValue } from './chain-hash.js'
import { maskRecord, type SensitiveFields } from './masking.js'

/** What an export needs. */
export interface ExportContext {
  log: ChangeLog
  serializer: Serializer
  sensitiveFields: SensitiveFields
}

/** One record as a line of JSON: values as the serializer writes them, sensitive fields masked. */
export function recordLine(record: ChangeRecord, ctx: ExportContext): string {
  const masked = maskRecord(record, ctx.sensitiveFields)
  return JSON.stringify({
    ...masked,
    oldValue: hashableValue(masked.oldValue, ctx.serializer),
    newValue: hashableValue(masked.newValue, ctx.serializer),
  })
}

/**
 * Every record matching `query` (its `limit` is the page size), oldest first, one JSON line each
 * (no trailing newline), reading the log page by page with its cursors.
 */
export async function* exportLines(
  ctx: ExportContext,
  query: Omit<ChangeQuery, 'cursor'>,
): AsyncGenerator<string, void, undefined> {
  let cursor: string | undefined
  do {
    const page = await ctx.log.query(cursor === undefined ? query : { ...query, cursor })
    for (const r of page.records) yield recordLine(r, ctx)
    cursor = page.nextCursor
  } while (cursor !== undefined)
}
