import type { TrimResult } from '@actor-cache/core'
import { ErrorReply } from 'redis'
import type { Commander } from './connection.js'

/** A reply of XINFO (flat name/value array in RESP2, a map in RESP3) as a record. */
function fields(reply: unknown): Record<string, unknown> {
  if (reply instanceof Map) return Object.fromEntries(reply)
  if (Array.isArray(reply)) {
    const out: Record<string, unknown> = {}
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1]
    return out
  }
  return (reply ?? {}) as Record<string, unknown>
}

/** A stream id as [ms, seq]. */
function parseId(id: string): [bigint, bigint] {
  const [ms = '0', seq = '0'] = id.split('-')
  return [BigInt(ms), BigInt(seq)]
}

/** The smaller of two stream ids. */
function minId(a: string, b: string): string {
  const [am, as] = parseId(a)
  const [bm, bs] = parseId(b)
  return am < bm || (am === bm && as < bs) ? a : b
}

/** The id right after `id`: XTRIM MINID of it removes `id` too. */
function after(id: string): string {
  const [ms, seq] = parseId(id)
  return `${ms}-${seq + 1n}`
}

const isNoKey = (error: unknown): boolean =>
  error instanceof ErrorReply && /no such key/i.test(error.message)

/**
 * Trims one shard's stream: removes reader groups that did not read for `readerTimeout` ms (by
 * the time each group's reads record in the shard's `seen` hash, or else its consumers' idle
 * time; a group with neither is no reader's of this transport), then every entry each remaining
 * group has read and none holds pending. The stream's last id is read before the groups: a group
 * created afterwards starts after it, so with no group left everything up to that id may go.
 * @internal
 */
export async function trimShard(
  commander: Commander,
  stream: string,
  seenKey: string,
  readerTimeout: number,
): Promise<TrimResult> {
  let info: Record<string, unknown>
  try {
    info = fields(await commander.send(['XINFO', 'STREAM', stream], stream, true))
  } catch (error) {
    if (isNoKey(error)) return { trimmed: 0, expiredReaders: 0 }
    throw error
  }
  const lastId = String(info['last-generated-id'] ?? '0-0')
  const groups = ((await commander.send<unknown[]>(['XINFO', 'GROUPS', stream], stream, true)) ??
    []) as unknown[]
  const [time, seenReply] = await Promise.all([
    commander.send<[string, string]>(['TIME'], stream, true),
    commander.send<unknown>(['HGETALL', seenKey], seenKey, true),
  ])
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
  const seen = fields(seenReply)
  let expiredReaders = 0
  let keepFrom = after(lastId)
  for (const raw of groups) {
    const g = fields(raw)
    const name = String(g.name)
    const mark = seen[name]
    delete seen[name]
    const sinceSeen = mark === undefined ? Number.NaN : now - Number(mark)
    if (await idleFor(commander, stream, name, sinceSeen, readerTimeout)) {
      const destroyed = await commander.send<number>(['XGROUP', 'DESTROY', stream, name], stream)
      await commander.send(['HDEL', seenKey, name], seenKey)
      if (Number(destroyed) === 1) expiredReaders++
      continue
    }
    keepFrom = minId(keepFrom, after(String(g['last-delivered-id'] ?? '0-0')))
    if (Number(g.pending) > 0) {
      const summary = await commander.send<unknown[]>(['XPENDING', stream, name], stream, true)
      const oldest = summary?.[1]
      if (typeof oldest === 'string') keepFrom = minId(keepFrom, oldest)
    }
  }
  // marks of groups gone otherwise (destroyed by hand, or with a lost Redis)
  const stale = Object.keys(seen)
  if (stale.length > 0) await commander.send(['HDEL', seenKey, ...stale], seenKey)
  const trimmed = await commander.send<number>(['XTRIM', stream, 'MINID', keepFrom], stream)
  return { trimmed: Number(trimmed), expiredReaders }
}

/**
 * True when group `name` did not read for `readerTimeout` ms: by its `seen` mark
 * (`sinceSeen`, NaN without one), else by its consumers (every one idle that long; none at all
 * counts as idle).
 */
async function idleFor(
  commander: Commander,
  stream: string,
  name: string,
  sinceSeen: number,
  readerTimeout: number,
): Promise<boolean> {
  if (!Number.isNaN(sinceSeen)) return sinceSeen > readerTimeout
  const consumers = (await commander.send<unknown[]>(
    ['XINFO', 'CONSUMERS', stream, name],
    stream,
    true,
  )) as unknown[]
  return consumers.every((c) => Number(fields(c).idle) > readerTimeout)
}
