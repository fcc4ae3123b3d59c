import { ErrorReply } from 'redis'
import type { Commander } from './connection.js'
import { Script } from './scripts.js'

/** All-or-nothing XADD under a capacity bound (XLEN counts ready and claimed entries): the ids. */
const ENQUEUE = new Script(`
local n = #ARGV - 1
if redis.call('XLEN', KEYS[1]) + n > tonumber(ARGV[1]) then return -1 end
local ids = {}
for i = 2, #ARGV do ids[i - 1] = redis.call('XADD', KEYS[1], '*', 'd', ARGV[i], 'a', '0') end
return ids
`)

/** Acknowledge and delete (entries are never trimmed while pending: deleted only after ack). */
const ACK = new Script(`
local n = 0
for i = 1, #ARGV - 1 do
  if redis.call('XACK', KEYS[1], ARGV[#ARGV], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

/**
 * Re-queue claimed entries: a new entry with the attempt count, the old one acked and deleted.
 * Only entries this consumer still holds (another may have taken them over meanwhile).
 * ARGV: ids..., consumer, group.
 */
const RELEASE = new Script(`
local group = ARGV[#ARGV]
local consumer = ARGV[#ARGV - 1]
local n = 0
for i = 1, #ARGV - 2 do
  local holder = redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1, consumer)
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #holder == 1 and #found == 1 and redis.call('XACK', KEYS[1], group, ARGV[i]) == 1 then
    local fields = found[1][2]
    local data, attempts = nil, 0
    for j = 1, #fields, 2 do
      if fields[j] == 'd' then data = fields[j + 1] end
      if fields[j] == 'a' then attempts = tonumber(fields[j + 1]) end
    end
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('XADD', KEYS[1], '*', 'd', data, 'a', tostring(attempts + 1))
    n = n + 1
  end
end
return n
`)

/**
 * Takes back entries no consumer of the group has read yet: the part of a batch that went in
 * before another shard refused the rest. An entry still in the stream and not pending was never
 * delivered (acks and releases delete what they acknowledge). ARGV: ids..., group.
 */
const WITHDRAW = new Script(`
local group = ARGV[#ARGV]
local n = 0
for i = 1, #ARGV - 1 do
  local pending = redis.pcall('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1)
  if type(pending) ~= 'table' or pending.err or #pending == 0 then
    n = n + redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return n
`)

/** A stream entry as Redis returns it. */
export type StreamEntry = [id: string, fields: string[]]

/** An entry handed to this consumer: its stream id, payload, and how often it was handed out. */
export interface RawDelivery {
  id: string
  data: string
  /** Deliveries by the group, plus the releases the entry's `a` field counts. */
  attempts: number
}

function raw([id, fields]: StreamEntry, deliveries: number): RawDelivery {
  let data = ''
  let released = 0
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'd') data = fields[i + 1] as string
    if (fields[i] === 'a') released = Number(fields[i + 1])
  }
  return { id, data, attempts: released + deliveries }
}

/**
 * One Redis Stream with its consumer group: one shard of a write queue. Each call is one
 * command or script on the stream's hash slot; the group is created on first use and again when
 * Redis lost it.
 * @internal
 */
export class QueueStream {
  readonly stream: string
  readonly group: string
  /** Most entries (ready + claimed) this stream holds. */
  readonly capacity: number
  readonly #commander: Commander
  #groupReady: Promise<void> | undefined
  #autoclaimCursor = '0-0'

  constructor(commander: Commander, stream: string, group: string, capacity: number) {
    this.#commander = commander
    this.stream = stream
    this.group = group
    this.capacity = capacity
  }

  /** XADDs one entry per payload, all or none: their ids, or `undefined` when they do not fit. */
  async add(payloads: readonly string[]): Promise<string[] | undefined> {
    const ids = await ENQUEUE.run<string[] | number>(
      this.#commander,
      [this.stream],
      [String(this.capacity), ...payloads],
    )
    return Array.isArray(ids) ? ids.map(String) : undefined
  }

  /** Deletes the entries of `ids` no consumer has read yet; how many it deleted. */
  withdraw(ids: readonly string[]): Promise<number> {
    return WITHDRAW.run<number>(this.#commander, [this.stream], [...ids, this.group])
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    await ACK.run(this.#commander, [this.stream], [...ids, this.group])
  }

  async release(ids: readonly string[], consumer: string): Promise<void> {
    if (ids.length === 0) return
    await RELEASE.run(this.#commander, [this.stream], [...ids, consumer, this.group])
  }

  /** Entries in the stream, and how many of them are claimed. */
  async counts(): Promise<{ length: number; inFlight: number }> {
    await this.ensureGroup()
    const [length, pending] = await Promise.all([
      this.#commander.send<number>(['XLEN', this.stream], this.stream, true),
      this.#withGroup(() =>
        this.#commander.send<[number, ...unknown[]]>(
          ['XPENDING', this.stream, this.group],
          this.stream,
          true,
        ),
      ),
    ])
    return { length: Number(length), inFlight: Number(pending[0] ?? 0) }
  }

  ensureGroup(): Promise<void> {
    this.#groupReady ??= this.#commander
      .send(['XGROUP', 'CREATE', this.stream, this.group, '0', 'MKSTREAM'], this.stream)
      .then(
        () => undefined,
        (error: unknown) => {
          if (error instanceof ErrorReply && error.message.startsWith('BUSYGROUP')) return
          this.#groupReady = undefined
          throw error
        },
      )
    return this.#groupReady
  }

  /** Runs `fn`; if Redis lost the group (restart without persistence), recreates it and retries. */
  async #withGroup<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn()
    } catch (error) {
      if (!(error instanceof ErrorReply) || !error.message.startsWith('NOGROUP')) throw error
      this.#groupReady = undefined
      await this.ensureGroup()
      return fn()
    }
  }

  /**
   * Takes over up to `count` entries another consumer claimed and never acked for `idleMs`
   * (XAUTOCLAIM, resuming where the last call stopped), with their delivery counts.
   */
  async takeOver(consumer: string, idleMs: number, count: number): Promise<RawDelivery[]> {
    const reply = await this.#withGroup(() =>
      this.#commander.send<[string, StreamEntry[], string[]?]>(
        [
          'XAUTOCLAIM',
          this.stream,
          this.group,
          consumer,
          String(idleMs),
          this.#autoclaimCursor,
          'COUNT',
          String(count),
        ],
        this.stream,
      ),
    )
    this.#autoclaimCursor = String(reply[0])
    // Redis 7 lists entries deleted meanwhile separately (reply[2]): gaps, not deliveries.
    const entries = (reply[1] ?? []).filter(
      (e): e is StreamEntry => Array.isArray(e) && e[1] !== null,
    )
    if (entries.length === 0) return []
    const pending = await this.#commander.send<[string, string, number, number][]>(
      [
        'XPENDING',
        this.stream,
        this.group,
        entries[0]?.[0] as string,
        entries.at(-1)?.[0] as string,
        String(entries.length),
        consumer,
      ],
      this.stream,
      true,
    )
    const deliveries = new Map(pending.map((p) => [String(p[0]), Number(p[3])]))
    return entries.map((entry) => raw(entry, deliveries.get(entry[0]) ?? 2))
  }

  /**
   * Reads up to `count` entries no consumer has read (XREADGROUP `>`). With `blockMs` > 0 it
   * waits that long for one, on `blocking` (a connection of its own), its deadline counted from
   * when it is sent.
   */
  async read(
    consumer: string,
    count: number,
    blockMs = 0,
    blocking: Commander = this.#commander,
  ): Promise<RawDelivery[]> {
    const args = ['XREADGROUP', 'GROUP', this.group, consumer, 'COUNT', String(count)]
    if (blockMs > 0) args.push('BLOCK', String(blockMs))
    args.push('STREAMS', this.stream, '>')
    const timeout = blockMs > 0 ? this.#commander.timeout + blockMs : this.#commander.timeout
    const reply = await this.#withGroup(() =>
      blocking.send<unknown>(args, this.stream, false, timeout),
    )
    return readStreamReply(reply).map((entry) => raw(entry, 1))
  }
}

/** XREADGROUP replies are `[[stream, entries]]` (RESP2) or `{ stream: entries }` (RESP3 map). */
function readStreamReply(reply: unknown): StreamEntry[] {
  if (reply === null || reply === undefined) return []
  if (Array.isArray(reply))
    return ((reply[0] as [string, StreamEntry[]] | undefined)?.[1] ?? []) as StreamEntry[]
  if (reply instanceof Map) return ([...reply.values()][0] ?? []) as StreamEntry[]
  const values = Object.values(reply as Record<string, StreamEntry[]>)
  return values[0] ?? []
}
