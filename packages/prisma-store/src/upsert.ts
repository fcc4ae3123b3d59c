import { ConflictError, type ResolvedSet, type SetResult } from '@actor-cache/core'
import type { Prepared } from './row-codec.js'
import type { PrismaTransaction } from './sql.js'
import { publishSet, type StoreScope, TIER } from './store-scope.js'
import { bar, floor } from './version-sql.js'

/** A bigint column: `bigint` through Prisma, text through `pg` (its default type parser). */
type Big = bigint | string

const INSERT = `INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags)`
const ASSIGN = `value = EXCLUDED.value, encoding = EXCLUDED.encoding, created_at = EXCLUDED.created_at,
      expires_at = EXCLUDED.expires_at, tags = EXCLUDED.tags, deleted = false, updated_at = now()`

/** The four shapes of a write, each one fixed statement text. */
type WriteKind = 'create' | 'compare' | 'versioned' | 'plain'

function kindOf(opts: ResolvedSet): WriteKind {
  if (opts.expectedVersion === 0) return 'create'
  if (opts.expectedVersion !== undefined) return 'compare'
  return opts.version === undefined ? 'plain' : 'versioned'
}

/**
 * The write statement of each kind, over the parameters `$1` namespace, `$2` key, `$3` value,
 * `$4` encoding, `$5` created, `$6` expires, `$7` tags, `$8` now and, for a compare-and-set or an
 * explicit version, `$9` that version.
 */
function upsertStatement(kind: WriteKind): string {
  const current = floor('e', 8)
  const visible = `(CASE WHEN e.deleted THEN 0 ELSE ${current} END)`
  switch (kind) {
    case 'create': // absent (or expired): insert, or take over the expired row
      return `${INSERT}
       VALUES ($1, $2, $3, $4, 1, $5, $6, $7::text[])
       ON CONFLICT (namespace, key) DO UPDATE SET ${ASSIGN}, version = ${current} + 1
       WHERE ${visible} = $9::bigint`
    case 'compare':
      return `UPDATE ac_cache_entries AS e SET value = $3, encoding = $4, created_at = $5, expires_at = $6,
         tags = $7::text[], updated_at = now(), version = e.version + 1
       WHERE namespace = $1 AND key = $2 AND ${visible} = $9::bigint`
    case 'versioned':
      return `${INSERT}
      VALUES ($1, $2, $3, $4, $9::bigint, $5, $6, $7::text[])
      ON CONFLICT (namespace, key) DO UPDATE SET ${ASSIGN}, version = EXCLUDED.version
      WHERE ${bar('e', 8)} <= EXCLUDED.version`
    case 'plain':
      return `${INSERT}
      VALUES ($1, $2, $3, $4, 1, $5, $6, $7::text[])
      ON CONFLICT (namespace, key) DO UPDATE SET ${ASSIGN}, version = ${current} + 1`
  }
}

/** The version a write must be compared with, of row `s` with the time in `$now`. */
function storedVersion(kind: WriteKind, now: number): string {
  // compare-and-set sees a tombstone as absent
  return kind === 'versioned' || kind === 'plain'
    ? floor('s', now)
    : `CASE WHEN s.deleted THEN 0 ELSE ${floor('s', now)} END`
}

// Built once: a text is its statement's identity (a named prepared statement on a direct pool).
const KINDS: readonly WriteKind[] = ['create', 'compare', 'versioned', 'plain']
/**
 * Each kind's write and what it returns. The outer SELECT sees the row as it was before the
 * statement: the stored version when the write did not apply.
 */
const WRITE = Object.fromEntries(
  KINDS.map((k) => [
    k,
    `WITH up AS (${upsertStatement(k)} RETURNING e.version)
     SELECT (SELECT version FROM up) AS applied,
            (SELECT ${storedVersion(k, 8)}
               FROM ac_cache_entries AS s WHERE namespace = $1 AND key = $2) AS stored`,
  ]),
) as Record<WriteKind, string>
/** The stored version, read again after a write that did not apply. */
const REREAD = Object.fromEntries(
  KINDS.map((k) => [
    k,
    `SELECT ${storedVersion(k, 3)} AS stored
       FROM ac_cache_entries AS s WHERE namespace = $1 AND key = $2`,
  ]),
) as Record<WriteKind, string>

/**
 * One versioned write; expired rows count as absent (version starts again at 1). A tombstone is
 * absent for compare-and-set but keeps its version: writes get a version above it, and an
 * explicit version must be above it to apply. A compare-and-set that does not apply fails with
 * `ConflictError`; any other write that does not apply reports the stored version.
 */
export async function upsert(
  scope: StoreScope,
  db: PrismaTransaction,
  p: Prepared,
): Promise<SetResult> {
  const { opts } = p
  const kind = kindOf(opts)
  const params: unknown[] = [
    scope.namespace,
    p.key,
    p.value,
    p.encoding,
    new Date(opts.createdAt),
    opts.expiresAt === null ? null : new Date(opts.expiresAt),
    [...opts.tags],
    new Date(),
  ]
  const expected = opts.expectedVersion ?? opts.version
  if (expected !== undefined) params.push(String(expected))
  const rows = await db.$queryRawUnsafe<{ applied: Big | null; stored: Big | null }[]>(
    WRITE[kind],
    ...params,
  )
  const row = rows[0]
  if (row?.applied !== null && row?.applied !== undefined) {
    publishSet(scope, p.key, true)
    return { applied: true, version: Number(row.applied) }
  }
  // Not applied. The statement's snapshot may predate the concurrent write that beat this
  // one (the conflict check sees the newest row, the outer SELECT does not): read again.
  const fresh = await db.$queryRawUnsafe<{ stored: Big }[]>(
    REREAD[kind],
    scope.namespace,
    p.key,
    new Date(),
  )
  const stored = Number(fresh[0]?.stored ?? row?.stored ?? 0)
  if (opts.expectedVersion !== undefined) {
    throw new ConflictError(opts.expectedVersion, stored, {
      tier: TIER,
      namespace: scope.namespace,
      key: p.key,
    })
  }
  publishSet(scope, p.key, false)
  return { applied: false, version: stored }
}
