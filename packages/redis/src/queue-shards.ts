import { InvalidOptionError } from '@actor-cache/core'
import { keySlot } from './slot.js'

/** Most shards a write queue or change stream may have (every claim or read looks at each one). */
export const MAX_SHARDS = 64

/** True when `v` is a safe integer from `min` to `max`. */
export const isIntIn = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): boolean =>
  Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max

/**
 * The name of a sharded structure (a write queue, a change stream): it goes into hash tags.
 * @throws {InvalidOptionError} unless 1-64 letters, digits, `_`, `.` or `-`
 */
export function checkShardedName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    throw new InvalidOptionError(
      'name',
      `must be 1-64 letters, digits, "_", "." or "-", got ${JSON.stringify(name)}`,
    )
  }
  return name
}

/**
 * A shard count, `1` when omitted.
 * @throws {InvalidOptionError} unless an integer from 1 to {@link MAX_SHARDS}
 */
export function checkShards(shards: unknown): number {
  const n = shards ?? 1
  if (!isIntIn(n, 1, MAX_SHARDS)) {
    throw new InvalidOptionError(
      'shards',
      `must be an integer from 1 to ${MAX_SHARDS}, got ${String(shards)}`,
    )
  }
  return n as number
}

const SLOTS = 16384

/**
 * The stream keys of a queue. One shard keeps the historical key `<prefix>:wq:{<name>}`; more
 * are spread over the slots as {@link shardKeys} describes.
 */
export function shardStreams(prefix: string, name: string, n: number): string[] {
  return shardKeys(prefix, 'wq', name, n)
}

/**
 * Keys of `n` shards of kind `kind` (`wq` for write queues, `cs` for change streams). One shard
 * is `<prefix>:<kind>:{<name>}`. With `n` shards, key `i` is `<prefix>:<kind>:{<name>#<i>.<j>}`,
 * `j` the first counter whose hash tag falls in the middle half of the i-th n-th of the 16384
 * slots: the keys spread evenly over the slots, so a cluster whose masters hold about equal slot
 * ranges (as `redis-cli --cluster create` makes them) gets them spread over its masters, whatever
 * the rounding at the ranges' edges. Names depend only on the name and `n`, never on the live
 * slot map, so every instance derives the same keys, before and after a resharding. A key with
 * the same `{tag}` and a suffix lands in the same slot as its shard key.
 */
export function shardKeys(prefix: string, kind: string, name: string, n: number): string[] {
  if (n === 1) return [`${prefix}:${kind}:{${name}}`]
  const keys: string[] = []
  for (let i = 0; i < n; i++) {
    const width = SLOTS / n
    const low = Math.ceil(i * width + width / 4)
    const high = Math.floor((i + 1) * width - width / 4)
    let tag = `${name}#${i}.0`
    // at least 128 slots wide: CRC16 lands in it within a few hundred counters on average
    for (let j = 0; j < 1_000_000; j++) {
      const candidate = `${name}#${i}.${j}`
      const slot = keySlot(`{${candidate}}`)
      if (slot >= low && slot < high) {
        tag = candidate
        break
      }
    }
    keys.push(`${prefix}:${kind}:{${tag}}`)
  }
  return keys
}

/**
 * The shard of a write whose shard key is `text` (by default `<namespace>\0<key>`): FNV-1a,
 * finished with a murmur3 mix so the low bits are well spread, mod `n`. Stable across processes
 * and versions: all writes of a key go to one stream, in the order they were enqueued.
 */
export function shardOf(text: string, n: number): number {
  if (n === 1) return 0
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) % n
}

/**
 * The default shard key: `<namespace>\0<key>` of a queued write.
 * @throws {InvalidOptionError} when the item has no string namespace and key
 */
export function writeShardKey(item: unknown): string {
  const w = item as { namespace?: unknown; key?: unknown } | null
  if (typeof w?.namespace === 'string' && typeof w.key === 'string') {
    return `${w.namespace}\u0000${w.key}`
  }
  throw new InvalidOptionError(
    'shardKey',
    'a sharded queue needs items with string namespace and key, or a shardKey option',
  )
}

/** Splits `total` into `n` counts that differ by at most 1, the larger ones from `start` on. */
export function spread(total: number, n: number, start: number): number[] {
  const counts = new Array<number>(n).fill(Math.floor(total / n))
  for (let k = 0; k < total % n; k++) counts[(start + k) % n] = (counts[(start + k) % n] ?? 0) + 1
  return counts
}

/** Capacity of shard `i` of `n`: `capacity` split so the shards add up to it. */
export function shardCapacity(capacity: number, i: number, n: number): number {
  return Math.floor(capacity / n) + (i < capacity % n ? 1 : 0)
}
