import { type VersionedDelete, validateVersionedDeletes } from '@actor-cache/core'
import { byKey, publishDeleted, type StoreScope } from './store-scope.js'
import { floor, live } from './version-sql.js'

/**
 * Deletes the rows of the namespace that match `condition` (SQL over `$3`, which holds `arg`);
 * counts the live ones (expired ones and tombstones go too).
 */
export async function deleteWhere(
  scope: StoreScope,
  condition: string,
  arg?: unknown,
): Promise<number> {
  const params: unknown[] = [scope.namespace, new Date()]
  if (arg !== undefined) params.push(arg)
  const rows = await scope.owner._runPrepared('delete', (db) =>
    db.$queryRawUnsafe<{ live: bigint | string }[]>(
      `WITH gone AS (DELETE FROM ac_cache_entries WHERE namespace = $1 AND ${condition}
         RETURNING ${live(2)} AS live)
       SELECT count(*) FILTER (WHERE live) AS live FROM gone`,
      ...params,
    ),
  )
  const n = Number(rows[0]?.live ?? 0)
  publishDeleted(scope, n)
  return n
}

/**
 * Replaces each key whose stored version is older than the given one by a tombstone that keeps
 * the version for the tier's `tombstoneTtl`. One statement; returns how many live rows went.
 */
export async function deleteOlderVersions(
  scope: StoreScope,
  items: readonly VersionedDelete[],
): Promise<number> {
  validateVersionedDeletes(items, scope.namespace)
  if (items.length === 0) return 0
  const sorted = [...items].sort(byKey)
  const now = Date.now()
  const rows = await scope.owner._run('deleteVersions', (db) =>
    db.$queryRawUnsafe<{ removed: bigint }[]>(
      `WITH old AS (
         SELECT key FROM ac_cache_entries
          WHERE namespace = $1 AND key = ANY($2::text[]) AND ${live(4)}
       ), up AS (
         INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags, deleted)
         SELECT $1, key, '', 't', version, $4, $5, '{}'::text[], true
           FROM UNNEST($2::text[], $3::bigint[]) AS t(key, version)
         ON CONFLICT (namespace, key) DO UPDATE SET value = '', encoding = 't', version = EXCLUDED.version,
           created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, tags = '{}'::text[],
           deleted = true, updated_at = now()
         WHERE ${floor('e', 4)} < EXCLUDED.version
         RETURNING key
       )
       SELECT count(*) AS removed FROM up WHERE key IN (SELECT key FROM old)`,
      scope.namespace,
      sorted.map((i) => i.key),
      sorted.map((i) => String(i.version)),
      new Date(now),
      new Date(now + scope.owner._tombstoneTtl),
    ),
  )
  const n = Number(rows[0]?.removed ?? 0)
  publishDeleted(scope, n)
  return n
}
