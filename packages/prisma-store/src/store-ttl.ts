import { validateKey, validateTtl } from '@actor-cache/core'
import type { StoreScope } from './store-scope.js'
import { live } from './version-sql.js'

/** Remaining TTL of a live entry in ms (`Infinity` without expiry), or `undefined` when absent. */
export async function readTtl(scope: StoreScope, key: string): Promise<number | undefined> {
  validateKey(key, scope.namespace)
  const now = new Date()
  const rows = await scope.owner._runPrepared('getTTL', (db) =>
    db.$queryRawUnsafe<{ expires_at: Date | null }[]>(
      `SELECT expires_at FROM ac_cache_entries WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
      scope.namespace,
      key,
      now,
    ),
  )
  const row = rows[0]
  if (row === undefined) return undefined
  return row.expires_at === null ? Infinity : Math.max(0, row.expires_at.getTime() - now.getTime())
}

/** Gives a live entry a new TTL from now, leaving its version alone; false when absent. */
export async function writeTtl(scope: StoreScope, key: string, ttl: number): Promise<boolean> {
  validateKey(key, scope.namespace)
  validateTtl(ttl)
  const now = Date.now()
  // past the largest Date, an expiry is no expiry
  const expiresAt = ttl === Infinity || now + ttl > 8.64e15 ? null : new Date(now + Math.ceil(ttl))
  const n = await scope.owner._runPrepared('setTTL', (db) =>
    db.$executeRawUnsafe(
      `UPDATE ac_cache_entries SET expires_at = $4, updated_at = now() WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
      scope.namespace,
      key,
      new Date(now),
      expiresAt,
    ),
  )
  return n > 0
}
