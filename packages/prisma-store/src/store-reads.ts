import { type CacheEntry, type VersionFloor, validateKey } from '@actor-cache/core'
import { COLUMNS, decodeRow, type Row } from './row-codec.js'
import { publishRead, type StoreScope } from './store-scope.js'
import { floor, live } from './version-sql.js'

/** The live entry of `key`, or `undefined`; publishes the hit or miss. */
export async function readOne<V>(
  scope: StoreScope,
  key: string,
): Promise<CacheEntry<V> | undefined> {
  validateKey(key, scope.namespace)
  const rows = await scope.owner._runPrepared('get', (db) =>
    db.$queryRawUnsafe<Row[]>(
      `SELECT ${COLUMNS} FROM ac_cache_entries WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
      scope.namespace,
      key,
      new Date(),
    ),
  )
  const row = rows[0]
  publishRead(scope, row === undefined ? 'miss' : 'hit', key)
  return row === undefined ? undefined : decodeRow<V>(scope, row)
}

/** The live entries of `keys` in one statement, in the order of `keys`; publishes each hit or miss. */
export async function readMany<V>(
  scope: StoreScope,
  keys: readonly string[],
): Promise<(CacheEntry<V> | undefined)[]> {
  for (const key of keys) validateKey(key, scope.namespace)
  if (keys.length === 0) return []
  const rows = await scope.owner._run('getMany', (db) =>
    db.$queryRawUnsafe<Row[]>(
      `SELECT ${COLUMNS} FROM ac_cache_entries WHERE namespace = $1 AND key = ANY($2::text[]) AND ${live(3)}`,
      scope.namespace,
      [...keys],
      new Date(),
    ),
  )
  const byKey = new Map(rows.map((r) => [r.key, r]))
  return keys.map((key) => {
    const row = byKey.get(key)
    publishRead(scope, row === undefined ? 'miss' : 'hit', key)
    return row === undefined ? undefined : decodeRow<V>(scope, row)
  })
}

/** Whether `key` has a live entry, without reading its value. */
export async function hasLive(scope: StoreScope, key: string): Promise<boolean> {
  validateKey(key, scope.namespace)
  const rows = await scope.owner._runPrepared('exists', (db) =>
    db.$queryRawUnsafe<unknown[]>(
      `SELECT 1 AS one FROM ac_cache_entries WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
      scope.namespace,
      key,
      new Date(),
    ),
  )
  return rows.length > 0
}

/**
 * Where the versions of `keys` stand, in one statement: a live row's version, a tombstone's
 * (absent, but later writes go above it), `0` when the key has no row or its row expired.
 */
export async function readFloors(
  scope: StoreScope,
  keys: readonly string[],
): Promise<VersionFloor[]> {
  for (const key of keys) validateKey(key, scope.namespace)
  if (keys.length === 0) return []
  const rows = await scope.owner._run('getMany', (db) =>
    db.$queryRawUnsafe<{ key: string; version: bigint; live: boolean }[]>(
      `SELECT key, ${floor('e', 3)} AS version, ${live(3)} AS live
         FROM ac_cache_entries e WHERE namespace = $1 AND key = ANY($2::text[])`,
      scope.namespace,
      [...keys],
      new Date(),
    ),
  )
  const byKey = new Map(rows.map((r) => [r.key, r]))
  return keys.map((key) => {
    const r = byKey.get(key)
    return r === undefined
      ? { version: 0, exists: false }
      : { version: Number(r.version), exists: r.live }
  })
}
