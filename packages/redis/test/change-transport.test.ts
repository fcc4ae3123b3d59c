import { randomUUID } from 'node:crypto'
import {
  type ChangeRecord,
  ClosedError,
  InvalidOptionError,
  LeaseLostError,
  type TransportRead,
} from '@actor-cache/core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  type AnyRedisClient,
  createRedisChangeTransport,
  type RedisChangeReader,
  type RedisChangeTransport,
  type RedisChangeTransportOptions,
  type SingleClient,
} from '../src/index.js'
import { shardOf } from '../src/queue-shards.js'
import { connect, eventually, intercept } from './helpers.js'

/** The shared local Redis these plain tests use; each test works under a prefix of its own. */
const URL = 'redis://127.0.0.1:6379'

let client: SingleClient
let opened: RedisChangeTransport[] = []
let prefix = ''

beforeAll(async () => {
  try {
    client = (await connect(URL)) as SingleClient
  } catch (error) {
    throw new Error(`these tests need a Redis on 127.0.0.1:6379 (start redis-server): ${error}`)
  }
})
afterEach(async () => {
  await Promise.all(opened.map((t) => t.close()))
  opened = []
  const keys = (await client.sendCommand(['KEYS', `${prefix}:*`])) as string[]
  if (keys.length > 0) await client.sendCommand(['DEL', ...keys])
})
afterAll(async () => {
  await client?.close()
})

function transport(extra: Partial<RedisChangeTransportOptions> = {}): RedisChangeTransport {
  if (opened.length === 0) prefix = `ct${randomUUID().slice(0, 8)}`
  const t = createRedisChangeTransport({ client, prefix, ...extra } as RedisChangeTransportOptions)
  opened.push(t)
  return t
}

let ids = 0
function record(entityId: string, version: number, entityType = 'primary_core'): ChangeRecord {
  return {
    id: `c${++ids}`,
    entityType,
    entityId,
    changeType: version === 1 ? 'create' : 'update',
    oldValue: version === 1 ? null : { hp: version - 1 },
    newValue: { hp: version },
    timestamp: 1_700_000_000_000 + version,
    userId: 'user:1',
    systemId: 'test',
    version,
  }
}

/** Reads until a read returns nothing and says no more; every read's outcome. */
async function drain(reader: RedisChangeReader, max = 100): Promise<TransportRead[]> {
  const reads: TransportRead[] = []
  for (let i = 0; i < 10_000; i++) {
    const r = await reader.read(max)
    reads.push(r)
    if (!r.more && r.records.length === 0) return reads
  }
  throw new Error('the reader never ran dry')
}

const recordsOf = (reads: TransportRead[]) => reads.flatMap((r) => r.records)
const anyLost = (reads: TransportRead[]) => reads.some((r) => r.lost)
const keyOf = (r: ChangeRecord) => `${r.entityId}@${r.version}`

describe('relay lease', () => {
  it('is held by one transport at a time; release hands it over without a takeover', async () => {
    const a = transport()
    const b = transport()
    const first = await a.acquireRelay('relay-a', 30_000)
    expect(first).toMatchObject({ owner: 'relay-a', takeover: false })
    expect(await b.acquireRelay('relay-b', 30_000)).toBeUndefined()
    expect(await a.acquireRelay('relay-a', 30_000)).toBeUndefined() // not re-entrant
    expect(await a.renewRelay(first!, 30_000)).toBe(true)
    await a.releaseRelay(first!)
    const second = await b.acquireRelay('relay-b', 30_000)
    expect(second).toMatchObject({ owner: 'relay-b', takeover: false })
    expect(second!.epoch).toBeGreaterThan(first!.epoch)
    expect(await a.renewRelay(first!, 30_000)).toBe(false) // the old token renews nothing
    await a.releaseRelay(first!) // nor releases the new holder's lease
    expect(await a.acquireRelay('relay-a', 30_000)).toBeUndefined()
  })

  it('taken after expiry is a takeover with a higher epoch', async () => {
    const a = transport()
    const b = transport()
    const first = await a.acquireRelay('relay-a', 50)
    let second: Awaited<ReturnType<typeof b.acquireRelay>>
    await eventually(async () => {
      second = await b.acquireRelay('relay-b', 30_000)
      return second !== undefined
    })
    expect(second!).toMatchObject({ owner: 'relay-b', takeover: true })
    expect(second!.epoch).toBeGreaterThan(first!.epoch)
    expect(await a.renewRelay(first!, 30_000)).toBe(false)
    await b.releaseRelay(second!)
    expect(await a.acquireRelay('relay-a', 30_000)).toMatchObject({ takeover: false })
  })

  it('refuses a checkpoint saved under an older epoch or a released lease', async () => {
    const a = transport()
    const b = transport()
    expect(await a.loadCheckpoint()).toBeUndefined()
    const first = await a.acquireRelay('relay-a', 50)
    await a.saveCheckpoint(first!, 'cp-1')
    expect(await b.loadCheckpoint()).toBe('cp-1')
    let second: Awaited<ReturnType<typeof b.acquireRelay>>
    await eventually(async () => {
      second = await b.acquireRelay('relay-b', 30_000)
      return second !== undefined
    })
    await expect(a.saveCheckpoint(first!, 'cp-stale')).rejects.toBeInstanceOf(LeaseLostError)
    await b.saveCheckpoint(second!, 'cp-2')
    expect(await a.loadCheckpoint()).toBe('cp-2')
    await b.releaseRelay(second!)
    await expect(b.saveCheckpoint(second!, 'cp-3')).rejects.toMatchObject({
      code: 'E_LEASE_LOST',
      epoch: second!.epoch,
    })
    expect(await a.loadCheckpoint()).toBe('cp-2')
  })
})

describe('publish', () => {
  it('refuses an older epoch on a shard a newer holder published to', async () => {
    const a = transport({ shards: 4 })
    const b = transport({ shards: 4 })
    const reader = await a.openReader()
    const first = await a.acquireRelay('relay-a', 50)
    await a.publish(first!, [record('e:1', 1)])
    let second: Awaited<ReturnType<typeof b.acquireRelay>>
    await eventually(async () => {
      second = await b.acquireRelay('relay-b', 30_000)
      return second !== undefined
    })
    await b.publish(second!, [record('e:1', 2)])
    await expect(a.publish(first!, [record('e:1', 3)])).rejects.toBeInstanceOf(LeaseLostError)
    // the refused record went nowhere
    const got = recordsOf(await drain(reader))
    expect(got.map(keyOf)).toEqual(['e:1@1', 'e:1@2'])
  })

  it('keeps each entity in one shard, in order, and spreads entities over the shards', async () => {
    const t = transport({ shards: 4 })
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 30_000)
    const entities = Array.from({ length: 40 }, (_, i) => `actor:${i}`)
    for (let v = 1; v <= 5; v++)
      await t.publish(
        lease!,
        entities.map((e) => record(e, v)),
      )
    const reads = await drain(reader, 7)
    expect(anyLost(reads)).toBe(false)
    const got = recordsOf(reads)
    expect(got).toHaveLength(200)
    const last = new Map<string, number>()
    for (const r of got) {
      expect(r.version).toBe((last.get(r.entityId) ?? 0) + 1)
      last.set(r.entityId, r.version)
    }
    for (const [i, stream] of t.streams.entries()) {
      const entries = (await client.sendCommand(['XRANGE', stream, '-', '+'])) as [
        string,
        string[],
      ][]
      const mine = entities.filter((e) => shardOf(`primary_core\u0000${e}`, 4) === i)
      expect(mine.length).toBeGreaterThan(0)
      expect(entries).toHaveLength(mine.length * 5)
      for (const [, fields] of entries) {
        const c = JSON.parse(fields[fields.indexOf('c') + 1] as string) as ChangeRecord
        expect(mine).toContain(c.entityId)
      }
    }
  })

  it('splits a large batch into several script calls, in order', async () => {
    const t = transport()
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 30_000)
    const big = 'x'.repeat(3000)
    const records = Array.from({ length: 1200 }, (_, i) => ({ ...record('one', i + 1), big }))
    await t.publish(lease!, records)
    const reads = await drain(reader, 1000)
    expect(anyLost(reads)).toBe(false)
    expect(recordsOf(reads).map((r) => r.version)).toEqual(records.map((r) => r.version))
  })
})

describe('readers', () => {
  it('see everything published after they opened, once per publish', async () => {
    const t = transport({ shards: 3 })
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('before', 1)])
    const r1 = await t.openReader()
    const r2 = await t.openReader()
    await t.publish(lease!, [record('a', 1), record('b', 1)])
    await t.publish(lease!, [record('a', 2)])
    await t.publish(lease!, [record('a', 2)]) // published twice: seen twice
    for (const reader of [r1, r2]) {
      const reads = await drain(reader)
      expect(anyLost(reads)).toBe(false)
      expect(recordsOf(reads).map(keyOf).sort()).toEqual(['a@1', 'a@2', 'a@2', 'b@1'])
    }
    expect(await r1.read(10)).toMatchObject({ records: [], lost: false, more: false })
  })

  it('get values back with the types core serializes: Date, bigint, Map, Set', async () => {
    const t = transport()
    const lease = await t.acquireRelay('relay', 30_000)
    const reader = await t.openReader()
    const value = {
      at: new Date(1_700_000_000_000),
      gold: 10n ** 20n,
      items: new Map([['sword', 1]]),
      tags: new Set(['a']),
    }
    await t.publish(lease!, [{ ...record('typed', 1), newValue: value }])
    const [got] = recordsOf(await drain(reader))
    expect(got?.newValue).toEqual(value)
  })

  it('return the checkpoint saved before the read', async () => {
    const t = transport()
    const reader = await t.openReader()
    expect((await reader.read(10)).checkpoint).toBeUndefined()
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('a', 1)])
    await t.saveCheckpoint(lease!, 'after-a1')
    const read = await reader.read(10)
    expect(read).toMatchObject({ checkpoint: 'after-a1', lost: false })
    expect(read.records.map(keyOf)).toEqual(['a@1'])
  })

  it('find no false loss over 50 interleaved publish and read rounds on 4 shards', async () => {
    const t = transport({ shards: 4 })
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 30_000)
    const published: string[] = []
    const got: string[] = []
    for (let round = 1; round <= 50; round++) {
      const batch = Array.from({ length: round % 7 }, (_, i) =>
        record(`e:${i}:${round % 5}`, round),
      )
      const publishing = t.publish(lease!, batch)
      const read = await reader.read(3)
      await publishing
      published.push(...batch.map(keyOf))
      expect(read.lost, `round ${round}`).toBe(false)
      got.push(...read.records.map(keyOf))
    }
    const rest = await drain(reader, 3)
    expect(anyLost(rest)).toBe(false)
    got.push(...recordsOf(rest).map(keyOf))
    expect(got.sort()).toEqual(published.sort())
  })

  it('report lost after entries they had not read were trimmed', async () => {
    const t = transport({ shards: 2 })
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('a', 1), record('b', 1)])
    expect((await reader.read(10)).lost).toBe(false)
    await t.publish(lease!, [record('a', 2), record('b', 2)])
    for (const s of t.streams) await client.sendCommand(['XTRIM', s, 'MAXLEN', '0'])
    const read = await reader.read(10)
    expect(read).toMatchObject({ lost: true, records: [] })
    // the baseline moves on: later entries are read without a new loss
    await t.publish(lease!, [record('a', 3), record('b', 3)])
    const next = await reader.read(10)
    expect(next.lost).toBe(false)
    expect(next.records.map(keyOf).sort()).toEqual(['a@3', 'b@3'])
  })

  it('report lost when maxLength capped the stream past them', async () => {
    const t = transport({ maxLength: 10 })
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('a', 1)])
    expect((await reader.read(10)).lost).toBe(false)
    // MAXLEN ~ drops whole stream nodes (100 entries by default): publish well past that
    const records = Array.from({ length: 1000 }, (_, i) => record('b', i + 1))
    await t.publish(lease!, records)
    expect(Number(await client.sendCommand(['XLEN', t.streams[0] as string]))).toBeLessThan(1000)
    const reads = await drain(reader, 2000)
    expect(reads[0]?.lost).toBe(true)
    expect(recordsOf(reads).at(-1)?.version).toBe(1000)
  })

  it('skip and count an entry that is not a change record, without a loss', async () => {
    const t = transport()
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('a', 1)])
    const stream = t.streams[0] as string
    const meta = `${stream}:meta`
    const run = (await client.sendCommand(['HGET', meta, 'run'])) as string
    const n = String(await client.sendCommand(['HINCRBY', meta, 'n', '1']))
    await client.sendCommand(['XADD', stream, '*', 'r', run, 'n', n, 'c', '{not json'])
    await t.publish(lease!, [record('a', 2)])
    const read = await reader.read(10)
    expect(read.lost).toBe(false)
    expect(read.records.map(keyOf)).toEqual(['a@1', 'a@2'])
    expect(reader.skipped).toBe(1)
  })

  it('say more when a shard had more than the read took', async () => {
    const t = transport()
    const reader = await t.openReader()
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('a', 1), record('a', 2), record('a', 3)])
    expect(await reader.read(2)).toMatchObject({ more: true, lost: false })
    const last = await reader.read(2)
    expect(last).toMatchObject({ more: false, lost: false })
    expect(last.records.map(keyOf)).toEqual(['a@3'])
  })

  it('destroy a random group on close and keep a named one', async () => {
    const t = transport({ shards: 2 })
    const random = await t.openReader()
    const named = await t.openReader({ group: 'audit' })
    const groups = async () =>
      (
        (await client.sendCommand(['XINFO', 'GROUPS', t.streams[0] as string])) as {
          name: string
        }[]
      )
        .map((g) => (g instanceof Map ? g.get('name') : g.name))
        .sort()
    expect(await groups()).toEqual(['audit', random.group].sort())
    await random.close()
    await random.close()
    await named.close()
    expect(await groups()).toEqual(['audit'])
    await expect(random.read(1)).rejects.toBeInstanceOf(ClosedError)
    // a named group continues where it stood
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('a', 1)])
    const again = await t.openReader({ group: 'audit' })
    const reads = await drain(again)
    expect(anyLost(reads)).toBe(false)
    expect(recordsOf(reads).map(keyOf)).toEqual(['a@1'])
  })

  it('wait until something is published, the timeout or an abort', async () => {
    const t = transport()
    const other = transport()
    const reader = await t.openReader()
    const lease = await other.acquireRelay('relay', 30_000)
    const waiting = reader.wait(60_000, new AbortController().signal)
    await other.publish(lease!, [record('a', 1)])
    await waiting
    expect((await reader.read(10)).records).toHaveLength(1)
    await reader.wait(1, new AbortController().signal) // timeout
    const ac = new AbortController()
    const aborted = reader.wait(60_000, ac.signal)
    ac.abort()
    await aborted
  })
})

describe('relay wake-ups', () => {
  it('waitForChanges resolves on notifyRelay from another transport', async () => {
    const relay = transport()
    const writer = transport()
    await relay.waitForChanges(1, new AbortController().signal) // subscribes
    const waiting = relay.waitForChanges(60_000, new AbortController().signal)
    writer.notifyRelay()
    writer.notifyRelay()
    await waiting
    expect(writer.notifyFailures).toBe(0)
    const ac = new AbortController()
    ac.abort()
    await relay.waitForChanges(60_000, ac.signal)
  })

  it('a wake between two waits is not slept through', async () => {
    const relay = transport()
    const witness = transport()
    const writer = transport()
    await relay.waitForChanges(0, new AbortController().signal) // subscribes, returns at once
    await witness.waitForChanges(0, new AbortController().signal)
    // the witness hears the wake, so Redis delivered it to both subscribers while the relay
    // was not waiting
    const heard = witness.waitForChanges(60_000, new AbortController().signal)
    writer.notifyRelay()
    await heard
    // time for the relay's own subscriber to read it (arriving later, it would still wake the
    // wait below: the test then passes without exercising the pending wake)
    await new Promise((r) => setTimeout(r, 50))
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), 20_000)
    await relay.waitForChanges(60_000, ac.signal)
    clearTimeout(timer)
    expect(ac.signal.aborted).toBe(false)
  })
})

describe('trim', () => {
  it('keeps what a live reader has not read, removes what every reader read', async () => {
    const t = transport({ shards: 2 })
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('x', 1), record('y', 1)]) // before any reader
    const fast = await t.openReader()
    const slow = await t.openReader()
    await t.publish(lease!, [record('a', 1), record('b', 1), record('a', 2)])
    expect(recordsOf(await drain(fast))).toHaveLength(3)
    const first = await t.trim()
    expect(first).toEqual({ trimmed: 2, expiredReaders: 0 }) // only what no group will read
    const reads = await drain(slow)
    expect(anyLost(reads)).toBe(false)
    expect(recordsOf(reads)).toHaveLength(3)
    expect(await t.trim()).toEqual({ trimmed: 3, expiredReaders: 0 })
    await t.publish(lease!, [record('a', 3)])
    expect((await fast.read(10)).records.map(keyOf)).toEqual(['a@3'])
    expect(await t.trim()).toEqual({ trimmed: 0, expiredReaders: 0 }) // slow has not read it
  })

  it('expires a reader group whose consumers stayed idle for readerTimeout', async () => {
    const t = transport({ shards: 2, readerTimeout: 1000 })
    const lease = await t.acquireRelay('relay', 30_000)
    const idle = await t.openReader()
    const live = await t.openReader({ group: 'live' })
    await t.publish(lease!, [record('a', 1), record('b', 1)])
    let expired = 0
    await eventually(async () => {
      await live.read(10) // read just before each trim: never idle for readerTimeout
      const r = await t.trim()
      expired += r.expiredReaders
      return expired >= 2
    })
    expect(expired).toBe(2) // the idle group, on each shard; never the live one
    const read = await idle.read(10)
    expect(read.lost).toBe(true) // its group was gone
  })

  it('with no reader, removes everything published', async () => {
    const t = transport({ shards: 2 })
    const lease = await t.acquireRelay('relay', 30_000)
    await t.publish(lease!, [record('a', 1), record('b', 1), record('c', 1)])
    expect(await t.trim()).toEqual({ trimmed: 3, expiredReaders: 0 })
    expect(await t.trim()).toEqual({ trimmed: 0, expiredReaders: 0 })
  })
})

describe('lifecycle and bad input', () => {
  /** The test client, counting the commands and connections made through it. */
  function counting(): { client: AnyRedisClient; sent: () => number } {
    let sent = 0
    const counted = () => {
      sent++
      return undefined
    }
    return { client: intercept(client, counted, ['sendCommand', 'duplicate']), sent: () => sent }
  }

  it('rejects bad options naming the option, sending nothing', () => {
    const c = counting()
    const bad: [Record<string, unknown>, string][] = [
      [{ shards: 0 }, 'shards'],
      [{ shards: 65 }, 'shards'],
      [{ shards: 1.5 }, 'shards'],
      [{ maxLength: 0 }, 'maxLength'],
      [{ maxLength: '10' }, 'maxLength'],
      [{ readerTimeout: -1 }, 'readerTimeout'],
      [{ name: 'a b' }, 'name'],
      [{ name: '' }, 'name'],
      [{ prefix: 'x'.repeat(33) }, 'prefix'],
      [{ commandTimeout: 0 }, 'commandTimeout'],
      [{ url: URL }, 'url'],
      [{ client: undefined, url: 'http://x' }, 'url'],
      [{ client: {} }, 'client'],
    ]
    for (const [extra, option] of bad) {
      expect(() =>
        createRedisChangeTransport({
          client: c.client,
          ...extra,
        } as RedisChangeTransportOptions),
      ).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION', option }))
    }
    expect(c.sent()).toBe(0)
  })

  it('rejects bad arguments with typed errors before sending anything', async () => {
    const c = counting()
    const t = createRedisChangeTransport({ client: c.client, prefix: 'ctbad', shards: 2 })
    opened.push(t)
    const lease = { epoch: 1, owner: 'x', token: 't', takeover: false }
    const signal = new AbortController().signal
    const cases: [Promise<unknown>, string][] = [
      [t.acquireRelay('', 1000), 'owner'],
      [t.acquireRelay('x'.repeat(513), 1000), 'owner'],
      [t.acquireRelay(7 as never, 1000), 'owner'],
      [t.acquireRelay('x', 0), 'ttl'],
      [t.acquireRelay('x', 1.5), 'ttl'],
      [t.renewRelay(lease, -1), 'ttl'],
      [t.renewRelay({} as never, 1000), 'lease'],
      [t.releaseRelay(null as never), 'lease'],
      [t.saveCheckpoint(lease, 5 as never), 'checkpoint'],
      [t.publish(lease, 'x' as never), 'records'],
      [t.publish(lease, [null as never]), 'records[0]'],
      [t.publish(lease, [{ ...record('a', 1), entityType: 3 as never }]), 'records[0].entityType'],
      [
        t.publish(lease, [record('a', 1), { ...record('a', 2), entityId: '' }]),
        'records[1].entityId',
      ],
      [t.publish(lease, [{ ...record('a', 1), version: 0 }]), 'records[0].version'],
      [t.publish(lease, [{ ...record('a', 1), version: 1.5 }]), 'records[0].version'],
      [t.publish({ ...lease, epoch: 0 }, [record('a', 1)]), 'lease'],
      [t.waitForChanges(-1, signal), 'ms'],
      [t.waitForChanges(10, {} as never), 'signal'],
      [t.openReader({ group: 'a b' }), 'group'],
    ]
    for (const [call, option] of cases) {
      await expect(call, option).rejects.toBeInstanceOf(InvalidOptionError)
      await expect(call, option).rejects.toMatchObject({ option })
    }
    const cyclic: Record<string, unknown> = { ...record('a', 1) }
    cyclic.self = cyclic
    await expect(t.publish(lease, [cyclic as never])).rejects.toMatchObject({
      code: 'E_SERIALIZATION',
    })
    expect(c.sent()).toBe(0)
    const reader = await t.openReader()
    const before = c.sent()
    for (const max of [0, 10_001, 1.5]) {
      await expect(reader.read(max)).rejects.toMatchObject({ option: 'max' })
    }
    await expect(reader.wait(Number.NaN, signal)).rejects.toMatchObject({ option: 'ms' })
    expect(c.sent()).toBe(before)
  })

  it('throws ClosedError after close, closes twice, leaves the client open', async () => {
    const t = transport()
    const reader = await t.openReader()
    await t.close()
    await t.close()
    const signal = new AbortController().signal
    await expect(t.acquireRelay('x', 1000)).rejects.toBeInstanceOf(ClosedError)
    await expect(t.loadCheckpoint()).rejects.toBeInstanceOf(ClosedError)
    await expect(t.trim()).rejects.toBeInstanceOf(ClosedError)
    await expect(t.openReader()).rejects.toBeInstanceOf(ClosedError)
    await expect(t.waitForChanges(10, signal)).rejects.toBeInstanceOf(ClosedError)
    await expect(reader.read(1)).rejects.toBeInstanceOf(ClosedError)
    t.notifyRelay() // no throw
    expect(await client.sendCommand(['PING'])).toBe('PONG')
  })
})
