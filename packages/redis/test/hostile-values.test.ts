/**
 * Values planted in Redis by something other than this store (a bug, a tool, an attacker):
 * bytes that are not UTF-8, impossible versions, hostile nesting, entries past their own expiry.
 * Each is a miss, reported when corrupt, and removed once, never taking a fresh write with it.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { type CacheEvent, CHANNELS } from '@actor-cache/core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type AnyRedisClient, createRedisStore, type SingleClient } from '../src/index.js'
import { connect } from './helpers.js'
import { type RedisServer, startRedis } from './servers.js'

let server: RedisServer
let client: AnyRedisClient

beforeAll(async () => {
  server = await startRedis()
  client = await connect(server.url)
}, 30_000)
afterAll(async () => {
  await client?.close()
  await server?.stop()
})

/** Error and miss events of every store, collected per test (filtered by namespace). */
const events: { kind: 'error' | 'miss'; event: CacheEvent }[] = []
const onError = (m: unknown): void => {
  events.push({ kind: 'error', event: m as CacheEvent })
}
const onMiss = (m: unknown): void => {
  events.push({ kind: 'miss', event: m as CacheEvent })
}
beforeAll(() => {
  subscribe(CHANNELS.error, onError)
  subscribe(CHANNELS.miss, onMiss)
})
afterAll(() => {
  unsubscribe(CHANNELS.error, onError)
  unsubscribe(CHANNELS.miss, onMiss)
})
afterEach(() => {
  events.length = 0
})

const decodeErrors = (namespace: string, key?: string) =>
  events.filter(
    (e) =>
      e.kind === 'error' &&
      e.event.namespace === namespace &&
      (key === undefined || e.event.key === key) &&
      (e.event.error as { code?: string }).code === 'E_DECODE',
  )

const raw = (): SingleClient => client as SingleClient
/** Stores `value` (text or exact bytes) under `key`, bypassing the store. */
const plant = (key: string, value: string | Buffer) => raw().sendCommand(['SET', key, value])
const exists = async (key: string) => Number(await raw().sendCommand(['EXISTS', key]))

const header = (version: string, expiresAt: number | null = null) =>
  `AC1 [${version},2,${expiresAt === null ? 'null' : expiresAt},[],"t"]\n`

/**
 * The client as the store sees it, with `before(args, options)` run ahead of each command: a
 * concurrent writer at an exact point, instead of a race against the clock.
 */
function interposed(
  before: (
    args: readonly unknown[],
    options: { typeMapping?: unknown } | undefined,
  ) => Promise<void>,
): AnyRedisClient {
  return {
    async sendCommand(args: readonly (string | Buffer)[], options?: { typeMapping?: unknown }) {
      await before(args, options)
      return raw().sendCommand(args, options as never)
    },
  } as unknown as AnyRedisClient
}

describe('hostile values in L2', () => {
  it('removes a value that is not UTF-8 once, reporting one decode error', async () => {
    const store = createRedisStore({ client, prefix: 'h' }).namespace('bytes')
    const planted: Record<string, Buffer> = {
      foreign: Buffer.from([0xff, 0xfe, 0xfd, 0x00, 0x80]),
      envelope: Buffer.concat([
        Buffer.from(`${header('1')}{"a":`),
        Buffer.from([0xc3, 0x28, 0xa0]),
        Buffer.from('}'),
      ]),
      batched: Buffer.from([0x41, 0x43, 0x31, 0x20, 0x5b, 0xe2, 0x82]),
    }
    for (const [key, bytes] of Object.entries(planted)) await plant(`h:bytes:${key}`, bytes)

    for (let read = 0; read < 3; read++) {
      expect(await store.get('foreign')).toBeUndefined()
      expect(await store.get('envelope')).toBeUndefined()
      expect(await store.getMany(['batched', 'foreign'])).toEqual([undefined, undefined])
    }
    for (const key of Object.keys(planted)) {
      expect(await exists(`h:bytes:${key}`), key).toBe(0)
      expect(decodeErrors('bytes', key), key).toHaveLength(1)
    }
  })

  it('never removes a value rewritten between the read and the removal', async () => {
    const tier = (before: Parameters<typeof interposed>[0]) =>
      createRedisStore({ client: interposed(before), prefix: 'h' }).namespace('race')
    const direct = createRedisStore({ client, prefix: 'h' }).namespace('race')
    const corrupt = Buffer.concat([Buffer.from(header('1')), Buffer.from([0xff, 0x7b])])
    const expired = `${header('1', Date.now() - 60_000)}"old"`
    type Moment = (args: readonly unknown[], options?: { typeMapping?: unknown }) => boolean
    const isBytesRead: Moment = (_, options) => options?.typeMapping !== undefined
    const isScript: Moment = (args) => args[0] === 'EVALSHA' || args[0] === 'EVAL'
    const moments: [string, string | Buffer, Moment][] = [
      ['corrupt bytes, rewritten before they are read again as bytes', corrupt, isBytesRead],
      ['corrupt bytes, rewritten just before the compare-and-delete', corrupt, isScript],
      ['an expired entry, rewritten just before the compare-and-delete', expired, isScript],
    ]
    for (const [label, value, at] of moments) {
      await plant('h:race:k', value)
      let written = false
      const store = tier(async (args, options) => {
        if (!written && at(args, options)) {
          written = true
          await direct.set('k', { fresh: true }, { version: 7 })
        }
      })
      expect(await store.get('k'), label).toBeUndefined()
      expect(written, label).toBe(true)
      expect(await direct.get('k'), label).toMatchObject({ value: { fresh: true }, version: 7 })
    }
  })

  it('treats envelope versions below 1, or not written as Lua reads them, as corrupt', async () => {
    const store = createRedisStore({ client, prefix: 'h' }).namespace('versions')
    const planted: Record<string, string> = {
      zero: `${header('0')}1`,
      negative: `${header('-5')}1`,
      'zero-tagged': 'AC1 [0,2,null,["t"],"t"]\n1',
      'not-digits': `${header('1.0')}1`,
    }
    for (const [key, value] of Object.entries(planted)) await plant(`h:versions:${key}`, value)
    expect(await store.getMany(Object.keys(planted))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ])
    for (const key of Object.keys(planted)) {
      expect(await exists(`h:versions:${key}`), key).toBe(0)
      expect(decodeErrors('versions', key), key).toHaveLength(1)
    }
    // a write over such a key starts over at version 1
    await plant('h:versions:zero', `${header('0')}1`)
    expect(await store.set('zero', 'ok')).toEqual({ applied: true, version: 1 })
  })

  it('refuses a value nested 200,000 levels deep, as it refuses to write one', async () => {
    const store = createRedisStore({ client, prefix: 'h' }).namespace('deep')
    const deep = '['.repeat(200_000) + ']'.repeat(200_000)
    await plant('h:deep:k', header('1') + deep)
    // compared without printing: a failure message would have to render the whole value
    expect((await store.get('k')) === undefined).toBe(true)
    expect(decodeErrors('deep', 'k')).toHaveLength(1)
    expect(decodeErrors('deep', 'k')[0]?.event.error).toMatchObject({
      message: expect.stringMatching(/nested deeper than 1000 levels/),
    })
    expect(await exists('h:deep:k')).toBe(0)
    await expect(store.set('k', JSON.parse(deep))).rejects.toMatchObject({
      code: 'E_SERIALIZATION',
    })
  })

  it('removes a key whose envelope says it expired, as a plain miss', async () => {
    const store = createRedisStore({ client, prefix: 'h' }).namespace('expired')
    const past = Date.now() - 1000
    // Redis keeps it (no PXAT): another writer's clock, or a copy made without the expiry
    await plant('h:expired:one', `${header('3', past)}"stale"`)
    await plant('h:expired:many', `${header('4', past)}"stale"`)
    await store.set('live', 'fresh', 600_000)
    expect(await store.get('one')).toBeUndefined()
    expect((await store.getMany(['many', 'live'])).map((e) => e?.value)).toEqual([
      undefined,
      'fresh',
    ])
    expect(await exists('h:expired:one')).toBe(0)
    expect(await exists('h:expired:many')).toBe(0)
    expect(await exists('h:expired:live')).toBe(1)
    expect(decodeErrors('expired')).toEqual([])
    expect(
      events
        .filter((e) => e.kind === 'miss' && e.event.namespace === 'expired')
        .map((e) => e.event.key),
    ).toEqual(['one', 'many'])
  })
})
