import type { ChangeLog, ChangeQuery, ChangeRecord } from '@actor-cache/core'
import type { CheckedSubscription } from './stream-options.js'

/** Most pages one query walk reads (a bound; a log that long is read by the feed instead). */
const MAX_PAGES = 1_000_000

/** Every page of a query, oldest first (by the log's position). */
async function* pages(
  log: ChangeLog,
  query: Omit<ChangeQuery, 'cursor'>,
): AsyncGenerator<ChangeRecord[], void, undefined> {
  let cursor: string | undefined
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await log.query(cursor === undefined ? query : { ...query, cursor })
    if (page.records.length > 0) yield page.records
    if (page.nextCursor === undefined) return
    cursor = page.nextCursor
  }
}

/**
 * The catch-up of a subscription that starts after a time: every record of its filter stamped
 * after `after`, a page at a time, one entity type (or entity) after the other, each in the log's
 * position order (which, within one entity, is version order: a version is appended once the
 * previous one is visible).
 */
export async function* catchUpAfterTime(
  log: ChangeLog,
  s: CheckedSubscription,
  after: number,
  pageSize: number,
): AsyncGenerator<ChangeRecord[], void, undefined> {
  for (const entityType of s.types) {
    for (const entityId of s.ids ?? [undefined]) {
      const query = {
        entityType,
        ...(entityId === undefined ? {} : { entityId }),
        from: after + 1,
        limit: pageSize,
      }
      yield* pages(log, query)
    }
  }
}

/** The catch-up of a subscription to one entity after a version: its later records in order. */
export async function* catchUpAfterVersion(
  log: ChangeLog,
  entityType: string,
  entityId: string,
  after: number,
  pageSize: number,
): AsyncGenerator<ChangeRecord[], void, undefined> {
  const later = (await log.history(entityType, entityId)).filter((r) => r.version > after)
  for (let i = 0; i < later.length; i += pageSize) yield later.slice(i, i + pageSize)
}

/**
 * The first version of an entity stamped after `after`: where a subscription that starts after a
 * time begins with an entity it first meets live (its earlier versions may come later, from a
 * transaction that committed out of order). Undefined when the log has none.
 */
export async function firstVersionAfter(
  log: ChangeLog,
  entityType: string,
  entityId: string,
  after: number,
): Promise<number | undefined> {
  let first: number | undefined
  for await (const page of pages(log, { entityType, entityId, from: after + 1, limit: 100 })) {
    for (const r of page) if (first === undefined || r.version < first) first = r.version
  }
  return first
}

/** An entity's records from version `from` on, read to fill a gap. */
export async function entityFrom(
  log: ChangeLog,
  entityType: string,
  entityId: string,
  from: number,
): Promise<ChangeRecord[]> {
  return (await log.history(entityType, entityId)).filter((r) => r.version >= from)
}
