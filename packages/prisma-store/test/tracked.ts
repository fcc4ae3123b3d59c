/**
 * Helpers of the tracked-write tests: a change builder as the state tracker makes one (simplified:
 * the hash is a string of our own), reads of the row and the log as they are stored, and a client
 * that runs a hook after each statement of a transaction.
 */
import { randomUUID } from 'node:crypto'
import type { ChangeBuilder, ChangeRecord, PriorState } from '@actor-cache/core'
import type { PrismaLike, PrismaTransaction } from '../src/index.js'

/** What a builder made of one call, for the test to look at. */
export interface Built {
  prior: PriorState
  record: ChangeRecord | undefined
}

/**
 * The next record of the entity's chain for a set (create or update by the prior state) or a
 * delete; `undefined` for a delete of an absent entity. `edit` may spoil the record.
 */
export function builder(
  namespace: string,
  key: string,
  write: { kind: 'set'; value: unknown } | { kind: 'delete' },
  options: { seen?: Built[]; edit?: (r: ChangeRecord) => ChangeRecord } = {},
): ChangeBuilder {
  return (prior) => {
    let record: ChangeRecord | undefined
    if (write.kind === 'set' || prior.exists) {
      const version = prior.version + 1
      record = {
        id: randomUUID(),
        entityType: namespace,
        entityId: key,
        changeType: write.kind === 'delete' ? 'delete' : prior.exists ? 'update' : 'create',
        oldValue: prior.exists ? (prior.value ?? null) : null,
        newValue: write.kind === 'delete' ? null : write.value,
        timestamp: Math.max(prior.now, prior.headTime),
        userId: 'u-1',
        systemId: 'test',
        version,
        prevHash: prior.headHash,
        hash: `${key}@${version}:${randomUUID()}`,
      }
      if (options.edit) record = options.edit(record)
    }
    options.seen?.push({ prior, record })
    return record
  }
}

/** The stored row of an entity (tombstones too), as the table holds it. */
export interface StoredRow {
  version: number
  deleted: boolean
  changeHash: string | null
  changeAt: number | null
  expiresAt: number | null
}

export async function storedRow(
  db: PrismaLike,
  namespace: string,
  key: string,
): Promise<StoredRow | undefined> {
  const rows = await db.$queryRawUnsafe<
    {
      version: bigint
      deleted: boolean
      change_hash: string | null
      change_at: Date | null
      expires_at: Date | null
    }[]
  >(
    `SELECT version, deleted, change_hash, change_at, expires_at FROM ac_cache_entries
      WHERE namespace = $1 AND key = $2`,
    namespace,
    key,
  )
  const r = rows[0]
  if (r === undefined) return undefined
  return {
    version: Number(r.version),
    deleted: r.deleted,
    changeHash: r.change_hash,
    changeAt: r.change_at?.getTime() ?? null,
    expiresAt: r.expires_at?.getTime() ?? null,
  }
}

/** The database clock, epoch ms. */
export async function dbClock(db: PrismaLike): Promise<number> {
  const rows = await db.$queryRawUnsafe<{ now: Date }[]>('SELECT clock_timestamp() AS now')
  return (rows[0] as { now: Date }).now.getTime()
}

/** One statement a transaction ran, and what it returned. */
export interface Step {
  sql: string
  result: unknown
  tx: PrismaTransaction
}

/** Whether a step is the locking read, or the statement writing the row and the record. */
export const isRead = (s: Step): boolean => s.sql.includes('FOR UPDATE')
export const isWrite = (s: Step): boolean => s.sql.includes('INSERT INTO ac_state_changes')

/**
 * `prisma`, with `hook` run after each query of each transaction (before its result goes back):
 * a failure or a pause injected between two statements.
 */
export function hooked(prisma: PrismaLike, hook: (step: Step) => Promise<void>): PrismaLike {
  return {
    $queryRawUnsafe: (q, ...v) => prisma.$queryRawUnsafe(q, ...v),
    $executeRawUnsafe: (q, ...v) => prisma.$executeRawUnsafe(q, ...v),
    $transaction: (fn, options) =>
      prisma.$transaction((tx) => {
        const wrapped: PrismaTransaction = {
          async $queryRawUnsafe<T>(q: string, ...v: unknown[]): Promise<T> {
            const result = await tx.$queryRawUnsafe<T>(q, ...v)
            await hook({ sql: q, result, tx })
            return result
          },
          $executeRawUnsafe: (q, ...v) => tx.$executeRawUnsafe(q, ...v),
        }
        return fn(wrapped)
      }, options),
  }
}
