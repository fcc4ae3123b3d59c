import { ConflictError } from '@actor-cache/core'
import { ErrorReply } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { storedVersion } from '../src/envelope.js'
import { type AnyRedisClient, createRedisStore, type SingleClient } from '../src/index.js'
import { connect, intercept } from './helpers.js'
import { type RedisServer, startRedis } from './servers.js'

let server: RedisServer
let real: AnyRedisClient

beforeAll(async () => {
  server = await startRedis()
  real = await connect(server.url)
}, 30_000)
afterAll(async () => {
  await real?.close()
  await server?.stop()
})

/** A store over a client that records the command names it is sent; `refuse` fails some. */
function spied(prefix: string, refuse?: (args: string[]) => boolean) {
  const sent: string[] = []
  const client = intercept(real, (_, [args]) => {
    const command = args as string[]
    sent.push(String(command[0]))
    return refuse?.(command) ? Promise.reject(new ErrorReply('ERR syntax error')) : undefined
  })
  const store = createRedisStore({ client, prefix }).namespace<unknown>('ns')
  return { store, sent }
}

describe('compare-and-set expecting an absent key (the fill of a loaded value)', () => {
  it('inserts at version 1 with one plain SET, with its expiry', async () => {
    const { store, sent } = spied('vs1')
    const r = await store.set('k', { hp: 1 }, { ttl: 60_000, expectedVersion: 0 })
    expect(r).toEqual({ applied: true, version: 1 })
    expect(sent).toEqual(['SET'])
    expect(await store.get('k')).toMatchObject({ value: { hp: 1 }, version: 1 })
    const ttl = await store.getTTL('k')
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(60_000)
    // no expiry: none in Redis either
    await store.set('forever', 1, { ttl: Infinity, expectedVersion: 0 })
    expect(await store.getTTL('forever')).toBe(Infinity)
  })

  it('refuses when an entry is there, showing its version, and leaves it', async () => {
    const { store } = spied('vs2')
    await store.set('k', 'a')
    await store.set('k', 'b')
    await store.set('k', 'c')
    const err = await store.set('k', 'fill', { expectedVersion: 0 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect(err).toMatchObject({ expectedVersion: 0, actualVersion: 3 })
    expect(await store.get('k')).toMatchObject({ value: 'c', version: 3 })
  })

  it('leaves bytes of another writer to the script, which writes over them as version 0', async () => {
    const { store, sent } = spied('vs3')
    await (real as SingleClient).sendCommand(['SET', 'vs3:ns:k', 'not an entry'])
    await (real as SingleClient).sendCommand(['SET', 'vs3:ns:zero', 'AC1 [0,1,null,[],"t"]\n1'])
    expect(await store.set('k', 'mine', { expectedVersion: 0 })).toEqual({
      applied: true,
      version: 1,
    })
    expect(await store.set('zero', 'mine', { expectedVersion: 0 })).toEqual({
      applied: true,
      version: 1,
    })
    expect(sent.filter((c) => c === 'SET')).toHaveLength(2)
    expect(sent.filter((c) => c !== 'SET')).toHaveLength(2) // the script, once per key
    expect(await store.get('k')).toMatchObject({ value: 'mine', version: 1 })
  })

  it('uses the script on a server that refuses SET with both NX and GET (before Redis 7.0)', async () => {
    const { store, sent } = spied('vs4', (args) => args[0] === 'SET' && args.includes('NX'))
    expect(await store.set('a', 1, { expectedVersion: 0 })).toEqual({ applied: true, version: 1 })
    expect(await store.set('b', 1, { expectedVersion: 0 })).toEqual({ applied: true, version: 1 })
    await expect(store.set('a', 2, { expectedVersion: 0 })).rejects.toBeInstanceOf(ConflictError)
    // refused once, then never tried again on that connection
    expect(sent.filter((c) => c === 'SET')).toHaveLength(1)
    expect(await store.get('b')).toMatchObject({ value: 1, version: 1 })
  })
})

describe('storedVersion', () => {
  it('reads the version as the scripts do, 0 for anything else', () => {
    expect(storedVersion('AC1 [7,1,null,[],"t"]\n1')).toBe(7)
    expect(storedVersion('AC1 [007,1')).toBe(7)
    expect(storedVersion('AC1 [9007199254740991,1')).toBe(9007199254740991)
    expect(storedVersion('AC1 [9007199254740992,1')).toBe(0) // past a safe integer
    expect(storedVersion('AC1 [12345678901234567,1')).toBe(0) // 17 digits
    expect(storedVersion('AC1 [,1')).toBe(0)
    expect(storedVersion('AC1 [5]')).toBe(0)
    expect(storedVersion('AC2 [5,1')).toBe(0)
    expect(storedVersion('')).toBe(0)
  })
})
