import {
  type CacheEntry,
  DecodeError,
  type ResolvedSet,
  resolveSetOptions,
  type SetOptions,
  validateKey,
} from '@actor-cache/core'
import { type StoreScope, TIER } from './store-scope.js'

/** A row of `ac_cache_entries` as the reads select it. */
export interface Row {
  key: string
  value: string
  encoding: string
  version: bigint | number | string
  created_at: Date
  expires_at: Date | null
  tags: string[]
}

/** The columns of a {@link Row}. */
export const COLUMNS = 'key, value, encoding, version, created_at, expires_at, tags'

/** A validated, encoded write: text as it is (`t`), bytes as base64 (`b`). */
export interface Prepared {
  key: string
  value: string
  encoding: 't' | 'b'
  opts: ResolvedSet
}

/** Validates a write and encodes its value with the namespace's codec. */
export function prepareWrite(
  scope: StoreScope,
  key: string,
  value: unknown,
  options: SetOptions | number | undefined,
): Prepared {
  validateKey(key, scope.namespace)
  const opts = resolveSetOptions(options, scope.defaultTtl, Date.now())
  const data = scope.codec.encode(value)
  if (typeof data === 'string') return { key, value: data, encoding: 't', opts }
  return {
    key,
    value: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
    encoding: 'b',
    opts,
  }
}

/** The frozen entry a row holds; a value the codec cannot read fails naming namespace and key. */
export function decodeRow<V>(scope: StoreScope, row: Row): CacheEntry<V> {
  let value: V
  try {
    value = scope.codec.decode(
      row.encoding === 'b' ? new Uint8Array(Buffer.from(row.value, 'base64')) : row.value,
    ) as V
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error
    throw new DecodeError(`${scope.namespace}:${row.key}: ${error.message}`, {
      tier: TIER,
      namespace: scope.namespace,
      key: row.key,
      cause: error,
    })
  }
  return Object.freeze({
    value,
    version: Number(row.version),
    createdAt: row.created_at.getTime(),
    expiresAt: row.expires_at === null ? null : row.expires_at.getTime(),
    tags: Object.freeze([...row.tags]),
  })
}
