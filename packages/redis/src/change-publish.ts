import { randomUUID } from 'node:crypto'
import {
  type ChangeRecord,
  InvalidOptionError,
  jsonSerializer,
  LeaseLostError,
  type RelayLease,
  SerializationError,
} from '@actor-cache/core'
import type { ChangeKeys } from './change-transport-options.js'
import type { Commander } from './connection.js'
import { shardOf } from './queue-shards.js'
import { Script } from './scripts.js'

/**
 * Appends records to one shard under the fence: refused (-1) when a newer epoch published to the
 * shard; otherwise the shard's fence becomes this epoch and each record is XADDed with the
 * shard's run id (created with the meta hash) and its number among every entry ever added.
 * KEYS: stream, meta. ARGV: epoch, maxLength, a new run id, records (JSON)...
 */
const PUBLISH = new Script(`
local epoch = tonumber(ARGV[1])
local fence = tonumber(redis.call('HGET', KEYS[2], 'fence') or '0')
if fence > epoch then return -1 end
if fence < epoch then redis.call('HSET', KEYS[2], 'fence', ARGV[1]) end
local run = redis.call('HGET', KEYS[2], 'run')
if not run then
  run = ARGV[3]
  redis.call('HSET', KEYS[2], 'run', run)
end
for i = 4, #ARGV do
  local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'r', run, 'n', n, 'c', ARGV[i])
end
return #ARGV - 3
`)

/** Most records one script call carries. */
const CHUNK_RECORDS = 500
/** Most bytes (about: UTF-16 length) of records one script call carries, unless one is larger. */
const CHUNK_CHARS = 1_000_000

/**
 * Checks `records` and serializes each, grouped by shard in input order. Nothing is sent.
 * @throws {InvalidOptionError} for a record without string entityType / entityId or a positive
 * integer version
 * @throws {SerializationError} for a record JSON cannot hold
 */
export function partition(records: readonly ChangeRecord[], shards: number): Map<number, string[]> {
  if (!Array.isArray(records)) throw new InvalidOptionError('records', 'must be an array')
  const parts = new Map<number, string[]>()
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as Partial<ChangeRecord> | null
    if (typeof r !== 'object' || r === null)
      throw new InvalidOptionError(`records[${i}]`, 'must be a change record')
    if (typeof r.entityType !== 'string' || r.entityType.length === 0)
      throw new InvalidOptionError(`records[${i}].entityType`, 'must be a non-empty string')
    if (typeof r.entityId !== 'string' || r.entityId.length === 0)
      throw new InvalidOptionError(`records[${i}].entityId`, 'must be a non-empty string')
    if (!Number.isSafeInteger(r.version) || (r.version as number) < 1) {
      throw new InvalidOptionError(
        `records[${i}].version`,
        `must be a positive integer, got ${String(r.version)}`,
      )
    }
    let json: string
    try {
      json = jsonSerializer.serialize(r)
    } catch (error) {
      throw new SerializationError(
        `records[${i}] cannot be serialized: ${(error as Error).message}`,
        {
          namespace: r.entityType,
          cause: error,
        },
      )
    }
    const shard = shardOf(`${r.entityType}\u0000${r.entityId}`, shards)
    const part = parts.get(shard)
    if (part) part.push(json)
    else parts.set(shard, [json])
  }
  return parts
}

/** Splits one shard's records into script calls of at most 500 records or about 1 MB. */
function chunks(part: readonly string[]): string[][] {
  const out: string[][] = []
  let current: string[] = []
  let size = 0
  for (const json of part) {
    if (
      current.length > 0 &&
      (current.length >= CHUNK_RECORDS || size + json.length > CHUNK_CHARS)
    ) {
      out.push(current)
      current = []
      size = 0
    }
    current.push(json)
    size += json.length
  }
  if (current.length > 0) out.push(current)
  return out
}

/**
 * Publishes serialized records to their shards: shards in parallel, each shard's chunks in order.
 * A chunk refused by the fence stops that shard and the call throws `LeaseLostError` once every
 * shard finished (chunks other shards accepted stay: readers apply records by version).
 * @internal
 */
export async function publishParts(
  commander: Commander,
  keys: ChangeKeys,
  maxLength: number,
  lease: RelayLease,
  parts: Map<number, string[]>,
): Promise<void> {
  const epoch = String(lease.epoch)
  const max = String(maxLength)
  const results = await Promise.allSettled(
    [...parts].map(async ([shard, part]) => {
      const stream = keys.streams[shard] as string
      const meta = keys.metas[shard] as string
      for (const chunk of chunks(part)) {
        const added = await PUBLISH.run<number>(
          commander,
          [stream, meta],
          [epoch, max, randomUUID(), ...chunk],
        )
        if (Number(added) < 0) {
          throw new LeaseLostError('publish', lease.epoch, { tier: commander.tier })
        }
      }
    }),
  )
  const lost = results.find(
    (r): r is PromiseRejectedResult =>
      r.status === 'rejected' && r.reason instanceof LeaseLostError,
  )
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  // A fence refusal says more than a connection failure of another shard: the relay must stop.
  if (lost) throw lost.reason
  if (failed) throw failed.reason
}
