import { randomUUID } from 'node:crypto'
import {
  type ChangeReader,
  type ChangeRecord,
  ClosedError,
  channels,
  DecodeError,
  InvalidOptionError,
  jsonSerializer,
  type TransportRead,
} from '@actor-cache/core'
import { checkWait, type Signal } from './change-notify.js'
import type { ChangeKeys } from './change-transport-options.js'
import type { Commander } from './connection.js'
import { Script } from './scripts.js'

/** Records in KEYS[3] that group ARGV[1] read now (server ms): what `trim` expires groups by. */
const SEEN = `
local function seen()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[3], ARGV[1], string.format('%.0f', now))
end
`

/**
 * Creates the group at the stream's end (or finds it) with this reader's consumer, marks it seen,
 * and returns the shard's meta in the same step: the baseline of loss detection.
 * KEYS: stream, meta, seen. ARGV: group, consumer. Returns {existed (1 | 0), run, n}.
 */
const OPEN = new Script(`${SEEN}
local made = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
local existed = 0
if type(made) == 'table' and made.err then
  if string.sub(made.err, 1, 9) ~= 'BUSYGROUP' then return redis.error_reply(made.err) end
  existed = 1
end
redis.call('XGROUP', 'CREATECONSUMER', KEYS[1], ARGV[1], ARGV[2])
seen()
local m = redis.call('HMGET', KEYS[2], 'run', 'n')
return {existed, m[1], m[2]}
`)

/**
 * Reads new entries and acknowledges them at once (nothing stays pending), with the shard's meta
 * read in the same atomic step. A missing group (Redis lost it, or trim expired it) is created
 * again at the stream's end and reported (1 in the first field). The group is marked seen.
 * KEYS: stream, meta, seen. ARGV: group, consumer, count.
 * Returns {group lost (1 | 0), run, n, then per entry: run, n, record JSON}.
 */
const READ = new Script(`${SEEN}
seen()
local lost = 0
local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if type(r) == 'table' and r.err then
  if string.sub(r.err, 1, 7) ~= 'NOGROUP' then return redis.error_reply(r.err) end
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
  redis.call('XGROUP', 'CREATECONSUMER', KEYS[1], ARGV[1], ARGV[2])
  lost = 1
  r = false
end
local m = redis.call('HMGET', KEYS[2], 'run', 'n')
local out = {lost, m[1], m[2]}
if r then
  local ids = {}
  for _, e in ipairs(r[1][2]) do
    ids[#ids + 1] = e[1]
    local f = e[2]
    local run, n, c = false, false, false
    for j = 1, #f, 2 do
      if f[j] == 'r' then run = f[j + 1] elseif f[j] == 'n' then n = f[j + 1] elseif f[j] == 'c' then c = f[j + 1] end
    end
    out[#out + 1] = run
    out[#out + 1] = n
    out[#out + 1] = c
    if #ids == 500 then
      redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
      ids = {}
    end
  end
  if #ids > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(ids)) end
end
return out
`)

/** The last entry a reader read from a shard: the shard's run id (null: none yet) and number. */
interface Position {
  run: string | null
  n: number
}

/** Most entries one read takes per shard. */
export const MAX_READ = 10_000

type Reply = [number, string | null, string | number | null, ...(string | number | null)[]]

/** Validates the `group` option of `openReader`. @throws {InvalidOptionError} */
export function checkGroup(group: unknown): string | undefined {
  if (group === undefined) return undefined
  if (typeof group !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(group)) {
    throw new InvalidOptionError(
      'group',
      `must be 1-128 letters, digits, "_", ".", ":" or "-", got ${JSON.stringify(group)}`,
    )
  }
  return group
}

/** What the transport lends a reader. @internal */
export interface ReaderContext {
  commander: Commander
  keys: ChangeKeys
  /** Fired when a relay published. */
  signal: Signal
  /** Resolves once the transport's connection is up. */
  ready(): Promise<void>
  /** The relay's checkpoint, read before the shards (see {@link RedisChangeReader.read}). */
  checkpoint(): Promise<string | undefined>
  /** Called once the reader closed. */
  closed(reader: RedisChangeReader): void
}

/**
 * One process's reader of every shard of a change stream: a consumer group per reader (on each
 * shard's stream), read and acknowledged in one script per shard, with loss detection from the
 * shard's run id and entry numbers.
 */
export class RedisChangeReader implements ChangeReader {
  /** The reader group's name. */
  readonly group: string
  readonly #consumer = randomUUID()
  readonly #ephemeral: boolean
  readonly #context: ReaderContext
  /** Per shard; undefined until known (a named group that existed starts from its first entry). */
  readonly #positions: (Position | undefined)[]
  #turn: Promise<unknown> = Promise.resolve()
  /** A read failed after shards may have handed it entries: the next read reports `lost`. */
  #failed = false
  #closed = false
  /** Entries skipped because they could not be read as change records. */
  skipped = 0

  /** @internal Use `transport.openReader()`. */
  constructor(context: ReaderContext, group: string | undefined) {
    this.#context = context
    this.#ephemeral = group === undefined
    this.group = group ?? `reader-${randomUUID()}`
    this.#positions = context.keys.streams.map(() => undefined)
  }

  /** Creates (or joins) the group on every shard and takes the baseline. @internal */
  async open(): Promise<void> {
    const { commander, keys } = this.#context
    const replies = await Promise.all(
      keys.streams.map((stream, i) =>
        OPEN.run<[number, string | null, string | number | null]>(
          commander,
          [stream, keys.metas[i] as string, keys.seen[i] as string],
          [this.group, this.#consumer],
        ),
      ),
    )
    replies.forEach(([existed, run, n], i) => {
      if (Number(existed) === 1) return // where the group stands is unknown: its first entry tells
      this.#positions[i] = { run: run ?? null, n: run == null ? 0 : Number(n ?? 0) }
    })
  }

  /**
   * Up to `max` entries per shard since the previous read. The relay's checkpoint is read first
   * (on a single server it is pipelined ahead of the shard reads on the same connection, so Redis
   * runs it first; on a cluster the shard reads wait for it), so every record the feed holds
   * before it was published before the shards were read.
   * @throws {InvalidOptionError} when `max` is not an integer from 1 to 10,000
   * @throws {ClosedError} once closed
   */
  read(max: number): Promise<TransportRead> {
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_READ) {
      return Promise.reject(
        new InvalidOptionError(
          'max',
          `must be an integer from 1 to ${MAX_READ}, got ${String(max)}`,
        ),
      )
    }
    if (this.#closed) return Promise.reject(new ClosedError('change reader'))
    // One read at a time: each continues from where the previous one left every shard.
    const turn = this.#turn.then(() => this.#read(max))
    this.#turn = turn.catch(() => undefined)
    return turn
  }

  async #read(max: number): Promise<TransportRead> {
    if (this.#closed) throw new ClosedError('change reader')
    await this.#context.ready()
    const { commander, keys } = this.#context
    const failedBefore = this.#failed
    this.#failed = true
    try {
      let checkpoint: Promise<string | undefined> = this.#context.checkpoint()
      if (commander.cluster) checkpoint = Promise.resolve(await checkpoint)
      const count = String(max)
      const shards = keys.streams.map((stream, i) =>
        READ.run<Reply>(
          commander,
          [stream, keys.metas[i] as string, keys.seen[i] as string],
          [this.group, this.#consumer, count],
        ),
      )
      const [cp, replies] = await Promise.all([checkpoint, Promise.all(shards)])
      const out: TransportRead = { records: [], lost: failedBefore, more: false, checkpoint: cp }
      for (const [i, reply] of replies.entries()) this.#apply(i, reply, max, out)
      this.#failed = false
      return out
    } catch (error) {
      // Shards that answered consumed their entries: they are gone for this reader.
      this.#failed = true
      throw error
    }
  }

  /** Adds one shard's entries to `out`, checking they continue from where it left the shard. */
  #apply(i: number, reply: Reply, max: number, out: TransportRead): void {
    const [groupLost, metaRun, metaN] = reply
    const meta: Position = { run: metaRun ?? null, n: metaRun == null ? 0 : Number(metaN ?? 0) }
    if (Number(groupLost) === 1) {
      out.lost = true
      this.#positions[i] = meta
      return
    }
    let at = this.#positions[i]
    const entries = (reply.length - 3) / 3
    for (let k = 3; k < reply.length; k += 3) {
      const run = typeof reply[k] === 'string' ? (reply[k] as string) : null
      const n = Number(reply[k + 1])
      if (run === null || !Number.isSafeInteger(n)) {
        this.#skip(`entry of shard ${i} without run or number`)
        continue
      }
      const next = at === undefined || ((at.run === null || at.run === run) && n === at.n + 1)
      if (!next) out.lost = true
      at = { run, n }
      const record = parseRecord(reply[k + 2])
      if (record) out.records.push(record)
      else this.#skip(`unreadable record in shard ${i}`)
    }
    if (entries >= max) {
      out.more = true
    } else {
      // Everything published before this read was read: the shard's count must be where we are.
      if (at !== undefined && (meta.run !== at.run || meta.n !== at.n)) out.lost = true
      at = meta
    }
    this.#positions[i] = at
  }

  #skip(what: string): void {
    this.skipped++
    if (channels.error.hasSubscribers) {
      channels.error.publish({
        tier: this.#context.commander.tier,
        namespace: '',
        durationMs: 0,
        error: new DecodeError(`change reader ${this.group}: ${what}`),
        operation: 'change-read',
      })
    }
  }

  /**
   * Resolves when a relay published, after `ms`, or on `signal`. A publication since the previous
   * wait returned resolves it at once.
   */
  async wait(ms: number, signal: AbortSignal): Promise<void> {
    checkWait(ms, signal)
    if (this.#closed) throw new ClosedError('change reader')
    await this.#context.signal.wait(ms, signal)
  }

  /**
   * Stops reading. A random group is destroyed on every shard (best effort: a group left behind
   * by an unreachable Redis is expired by `trim`); a named group stays. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#context.signal.release()
    this.#context.closed(this)
    if (!this.#ephemeral) return
    await this.#turn
    const { commander, keys } = this.#context
    await Promise.all(
      keys.streams.flatMap((stream, i) => [
        commander.send(['XGROUP', 'DESTROY', stream, this.group], stream).catch(() => undefined),
        commander.send(['HDEL', keys.seen[i] as string, this.group], stream).catch(() => undefined),
      ]),
    )
  }
}

/**
 * A change record from its text (core's JSON serializer: Dates, bigints, Maps and Sets in values
 * come back as they were), or undefined when it is not one.
 */
function parseRecord(json: unknown): ChangeRecord | undefined {
  if (typeof json !== 'string') return undefined
  try {
    const r = jsonSerializer.deserialize(json) as Partial<ChangeRecord> | null
    if (
      typeof r === 'object' &&
      r !== null &&
      typeof r.entityType === 'string' &&
      typeof r.entityId === 'string' &&
      Number.isSafeInteger(r.version)
    ) {
      return r as ChangeRecord
    }
  } catch {
    // skipped and counted by the caller
  }
  return undefined
}
