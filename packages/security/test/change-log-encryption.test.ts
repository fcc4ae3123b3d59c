/**
 * State tracking of encrypted namespaces: the change log holds the old and new values of every
 * tracked write encrypted (encryptedSerializer), the store of record's tracked writes go through
 * encryptTier, and the tracker still verifies, replays and rolls back on the plaintext.
 */
import { type CacheTier, isActorCacheError, isChangeRecordingStore } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import {
  createPrismaChangeLog,
  createPrismaStore,
  type PrismaChangeLog,
} from '@actor-cache/prisma-store'
import { createRedisStore } from '@actor-cache/redis'
import { createStateTracker, type StateTracker, trackAs } from '@actor-cache/state-tracker'
import { createTieredCache } from '@actor-cache/strategies'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createKeyring,
  ENCRYPTED_PREFIX,
  encryptedSerializer,
  encryptTier,
  storedKeyId,
} from '../src/index.js'
import {
  asStoreClient,
  assertReplayable,
  postgres,
  type Redis,
  redis,
  scanValues,
  type TestDb,
  testKey,
  uid,
} from './helpers.js'

const k1 = { id: 'k1', key: testKey(1) }
const k2 = { id: 'k2', key: testKey(2) }

interface Actor {
  name: string
  email: string
  level: number
}
interface Secret {
  token: string
}

/** The change values as stored: an envelope string, with a bit flipped. */
const flip = (text: string, byte: number, bit: number): string => {
  const bytes = Buffer.from(text.slice(ENCRYPTED_PREFIX.length), 'base64')
  bytes[byte % bytes.length] = (bytes[byte % bytes.length] as number) ^ (1 << bit)
  return ENCRYPTED_PREFIX + bytes.toString('base64')
}

const failure = (fn: () => unknown): unknown => {
  try {
    fn()
  } catch (error) {
    return error
  }
  return undefined
}

describe('encryptedSerializer', () => {
  const keyring = createKeyring({ keys: [k1] })

  it('writes envelopes with a fresh nonce each, and reads the values back', () => {
    const s = encryptedSerializer({ keyring })
    const value = { email: 'ann@example.com', nested: { list: [1, 'two', null] } }
    const a = s.serialize(value)
    const b = s.serialize(value)
    expect(a.startsWith(ENCRYPTED_PREFIX)).toBe(true)
    expect(a).not.toBe(b)
    expect(`${a}${b}`).not.toContain('ann@example')
    expect(s.deserialize(a)).toEqual(value)
    expect(s.deserialize(s.serialize('text'))).toBe('text')
    expect(storedKeyId(a)).toBe('k1')
  })

  it('any bit flipped in the envelope fails with E_DECRYPT, never a value', async () => {
    const s = encryptedSerializer({ keyring })
    const good = s.serialize({ email: 'ann@example.com', level: 3 })
    const length = Buffer.from(good.slice(ENCRYPTED_PREFIX.length), 'base64').length
    await assertReplayable(
      fc.property(fc.nat({ max: length - 1 }), fc.nat({ max: 7 }), (byte, bit) =>
        isActorCacheError(
          failure(() => s.deserialize(flip(good, byte, bit))),
          'E_DECRYPT',
        ),
      ),
      300,
    )
    for (let byte = 0; byte < length; byte++) {
      expect(failure(() => s.deserialize(flip(good, byte, byte % 8)))).toMatchObject({
        code: 'E_DECRYPT',
      })
    }
  })

  it('plaintext, another label and an encryptTier value fail with E_DECRYPT', async () => {
    const s = encryptedSerializer({ keyring })
    for (const planted of ['{"email":"ann@example.com"}', 'null', '']) {
      expect(failure(() => s.deserialize(planted))).toMatchObject({ code: 'E_DECRYPT' })
    }
    const other = encryptedSerializer({ keyring, label: 'actor-cache:dead-letters' })
    expect(failure(() => other.deserialize(s.serialize('x')))).toMatchObject({
      code: 'E_DECRYPT',
    })
    // a cache entry's envelope does not open as a change value, nor the other way round
    const plain = createMemCache()
    const tier = encryptTier(plain, { keyring, namespaces: { secrets: 'value' } })
    await tier.namespace('secrets').set('k', 'entry')
    const entry = String((await plain.namespace('secrets').get('k'))?.value)
    expect(failure(() => s.deserialize(entry))).toMatchObject({ code: 'E_DECRYPT' })
    await plain.namespace('secrets').set('k', s.serialize('entry'))
    await expect(tier.namespace('secrets').get('k')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    await plain.close()
  })

  it('reads values of every key in the keyring, writes with the primary one', () => {
    const old = encryptedSerializer({ keyring }).serialize('written with k1')
    const rotated = encryptedSerializer({ keyring: createKeyring({ keys: [k1, k2] }) })
    expect(rotated.deserialize(old)).toBe('written with k1')
    expect(storedKeyId(rotated.serialize('new'))).toBe('k2')
    const retired = encryptedSerializer({ keyring: createKeyring({ keys: [k2] }) })
    expect(failure(() => retired.deserialize(old))).toMatchObject({
      code: 'E_DECRYPT',
      keyId: 'k1',
    })
  })

  it('refuses bad options, naming the option', () => {
    for (const [options, option] of [
      [undefined, 'options'],
      [{}, 'keyring'],
      [{ keyring, inner: {} }, 'inner'],
      [{ keyring, label: '' }, 'label'],
      [{ keyring, label: 'x'.repeat(201) }, 'label'],
    ] as const) {
      expect(failure(() => encryptedSerializer(options as never))).toMatchObject({
        code: 'E_INVALID_OPTION',
        option,
      })
    }
  })
})

describe('tracked writes of encrypted namespaces through a TieredCache with Redis and PostgreSQL', () => {
  const keyring = createKeyring({ keys: [k1, k2] })
  const namespaces = { secrets: 'value', actors: ['email'] } as const
  const changeSerializer = encryptedSerializer({ keyring })
  let client: Redis
  let db: TestDb
  let log: PrismaChangeLog
  let tracker: StateTracker
  let l3: CacheTier
  beforeAll(async () => {
    client = await redis()
    db = await postgres()
    log = createPrismaChangeLog({ prisma: db.prisma, serializer: changeSerializer })
    tracker = createStateTracker({ log, systemId: 'game-server' })
    l3 = encryptTier(createPrismaStore({ prisma: db.prisma, changeSerializer }), {
      keyring,
      namespaces,
    })
  })
  afterAll(async () => {
    await client?.close()
    await db?.drop()
  })

  /** A cache over Redis (its own prefix) and the encrypted record, tracking both namespaces. */
  function stack(prefix: string, record: CacheTier = l3) {
    const l1 = createMemCache()
    const l2 = encryptTier(createRedisStore({ client: asStoreClient(client), prefix }), {
      keyring,
      namespaces,
    })
    const cache = createTieredCache({
      l1,
      l2,
      l3: record,
      tracking: tracker.writeTracking(['secrets', 'actors']),
    })
    return {
      cache,
      actors: cache.namespace<Actor>('actors'),
      secrets: cache.namespace<Secret>('secrets'),
      close: async () => {
        await cache.close()
        await l1.close()
      },
    }
  }

  /** Every row of a table as JSON text, every column included. */
  async function dump(table: string, where = 'TRUE'): Promise<string[]> {
    const rows = await db.prisma.$queryRawUnsafe<{ row: string }[]>(
      `SELECT row_to_json(t)::text AS row FROM "${db.schema}".${table} t WHERE ${where}`,
    )
    return rows.map((r) => r.row)
  }

  /** The entity as the store of record holds it, decrypted: what `verify` compares with. */
  async function stored(namespace: string, key: string) {
    const e = await l3.namespace(namespace).get(key)
    return e === undefined
      ? { exists: false as const }
      : { exists: true as const, value: e.value, version: e.version }
  }

  it('the encrypted record keeps the tracked write: it is a change-recording store', () => {
    expect(isChangeRecordingStore(l3.namespace('actors'))).toBe(true)
    expect(isChangeRecordingStore(l3.namespace('secrets'))).toBe(true)
    expect(isChangeRecordingStore(encryptTier(createMemCache(), { keyring, namespaces }))).toBe(
      false,
    )
    expect(
      isChangeRecordingStore(
        encryptTier(createMemCache(), { keyring, namespaces }).namespace('actors'),
      ),
    ).toBe(false)
  })

  it('leaves no plaintext in Redis, ac_cache_entries or ac_state_changes; the tracker reads it back', async () => {
    const prefix = `ac-sec-${uid()}`
    const { actors, secrets, close } = stack(prefix)
    const email = (i: number, gen: string) => `player${i}.${gen}mail@example.org`
    const token = (i: number, gen: string) => `tok-${i}-${gen}-SECRETVALUE`
    await trackAs({ userId: 'user:1', systemId: 'api' }, async () => {
      for (let i = 0; i < 6; i++) {
        await actors.set(`actor:${i}`, { name: `Name${i}`, email: email(i, 'a'), level: 1 })
        await secrets.set(`s:${i}`, { token: token(i, 'a') })
      }
      for (let i = 0; i < 6; i++) {
        await actors.set(`actor:${i}`, { name: `Name${i}`, email: email(i, 'b'), level: 2 })
        await secrets.set(`s:${i}`, { token: token(i, 'b') })
      }
      expect(await actors.delete('actor:0')).toBe(true)
      expect(await secrets.delete('s:0')).toBe(true)
    })
    const gm = { userId: 'user:gm', systemId: 'admin-tool' }
    // back to version 1 (the first email), and the deleted secret re-created
    expect(
      await tracker.rollback('actors', 'actor:1', { toVersion: 1 }, { writer: actors, ...gm }),
    ).toMatchObject({ changed: true, version: 3 })
    const deleted = (await tracker.history('secrets', 's:0')).at(-1)
    expect(deleted?.changeType).toBe('delete')
    await tracker.rollback(
      'secrets',
      's:0',
      { undo: deleted?.id ?? '' },
      { writer: secrets, ...gm },
    )
    expect(await actors.get('actor:1')).toEqual({ name: 'Name1', email: email(1, 'a'), level: 1 })
    expect(await secrets.get('s:0')).toEqual({ token: token(0, 'b') })
    await close()

    const sensitive = /mail@example|SECRETVALUE/
    const redisText = [...(await scanValues(client, `${prefix}:`)).entries()]
      .map(([k, v]) => `${k}\n${v}`)
      .join('\n')
    expect(redisText).toContain('Name3') // the public field is in clear: the scan reads values
    expect(redisText).not.toMatch(sensitive)

    const entries = await dump('ac_cache_entries')
    expect(entries).toHaveLength(12)
    expect(entries.join('\n')).toContain('Name3')
    expect(entries.join('\n')).not.toMatch(sensitive)

    const changes = await dump('ac_state_changes')
    // 12 creates, 12 updates, 2 deletes, 2 rollbacks
    expect(changes).toHaveLength(28)
    expect(changes.join('\n')).not.toMatch(sensitive)
    expect(changes.join('\n')).not.toContain('Name3') // whole values are encrypted in the log
    const columns = await db.prisma.$queryRawUnsafe<
      { old_value: string | null; new_value: string | null; change_type: string }[]
    >(`SELECT old_value, new_value, change_type FROM "${db.schema}".ac_state_changes`)
    for (const c of columns) {
      for (const v of [c.old_value, c.new_value]) {
        if (v !== null) expect(v.startsWith(ENCRYPTED_PREFIX)).toBe(true)
      }
      expect(c.old_value === null).toBe(c.change_type === 'create')
      expect(c.new_value === null).toBe(c.change_type === 'delete')
    }
    // the columns hold the values: decrypted, they are the plaintext
    const opened = columns.flatMap((c) =>
      [c.old_value, c.new_value]
        .filter((v) => v !== null)
        .map((v) => changeSerializer.deserialize(v)),
    )
    expect(JSON.stringify(opened)).toContain(email(4, 'b'))
    expect(JSON.stringify(opened)).toContain(token(4, 'b'))

    // the tracker reads plaintext: every chain verifies against the (decrypted) record
    for (let i = 0; i < 6; i++) {
      for (const [ns, key] of [
        ['actors', `actor:${i}`],
        ['secrets', `s:${i}`],
      ] as const) {
        expect(await tracker.verify(ns, key, { stored: await stored(ns, key) })).toMatchObject({
          ok: true,
        })
      }
    }
    expect(await tracker.getStateAt('actors', 'actor:2', { version: 1 })).toMatchObject({
      exists: true,
      value: { name: 'Name2', email: email(2, 'a'), level: 1 },
    })
    expect(await tracker.getStateAt('secrets', 's:0', { version: 3 })).toEqual(
      expect.objectContaining({ exists: false, version: 3 }),
    )
    expect(
      (await tracker.history('actors', 'actor:1')).map((r) => [
        r.changeType,
        r.oldValue,
        r.newValue,
        r.userId,
      ]),
    ).toEqual([
      ['create', null, { name: 'Name1', email: email(1, 'a'), level: 1 }, 'user:1'],
      [
        'update',
        { name: 'Name1', email: email(1, 'a'), level: 1 },
        { name: 'Name1', email: email(1, 'b'), level: 2 },
        'user:1',
      ],
      [
        'update',
        { name: 'Name1', email: email(1, 'b'), level: 2 },
        { name: 'Name1', email: email(1, 'a'), level: 1 },
        'user:gm',
      ],
    ])
    expect((await tracker.history('secrets', 's:0')).map((r) => r.newValue)).toEqual([
      { token: token(0, 'a') },
      { token: token(0, 'b') },
      null,
      { token: token(0, 'b') },
    ])
    // a checkpoint reads the whole log through the serializer, and verifies
    const checkpoint = await tracker.checkpoint()
    expect(await tracker.verifyCheckpoint(checkpoint)).toMatchObject({ ok: true })
  })

  it('a bit flipped in a stored change value fails history and verify with E_DECRYPT', async () => {
    const { secrets, close } = stack(`ac-sec-${uid()}`)
    await trackAs({ userId: 'u' }, async () => {
      await secrets.set('flip', { token: 'v1-SECRETVALUE' })
      await secrets.set('flip', { token: 'v2-SECRETVALUE' })
    })
    await close()
    const where = `entity_type = 'secrets' AND entity_id = 'flip' AND version = 2`
    const [row] = await db.prisma.$queryRawUnsafe<{ new_value: string }[]>(
      `SELECT new_value FROM "${db.schema}".ac_state_changes WHERE ${where}`,
    )
    const good = row?.new_value ?? ''
    const length = Buffer.from(good.slice(ENCRYPTED_PREFIX.length), 'base64').length
    // header and key id, nonce, ciphertext and tag
    for (const byte of [0, 3, 8, length - 20, length - 1]) {
      await db.prisma.$executeRawUnsafe(
        `UPDATE "${db.schema}".ac_state_changes SET new_value = $1 WHERE ${where}`,
        flip(good, byte, byte % 8),
      )
      await expect(tracker.history('secrets', 'flip')).rejects.toMatchObject({ code: 'E_DECRYPT' })
      await expect(tracker.verify('secrets', 'flip')).rejects.toMatchObject({ code: 'E_DECRYPT' })
      await expect(tracker.getStateAt('secrets', 'flip', { version: 1 })).rejects.toMatchObject({
        code: 'E_DECRYPT',
      })
    }
    // plaintext planted in the column fails the same way
    await db.prisma.$executeRawUnsafe(
      `UPDATE "${db.schema}".ac_state_changes SET new_value = $1 WHERE ${where}`,
      JSON.stringify({ token: 'planted' }),
    )
    await expect(tracker.history('secrets', 'flip')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    // restored, it reads again
    await db.prisma.$executeRawUnsafe(
      `UPDATE "${db.schema}".ac_state_changes SET new_value = $1 WHERE ${where}`,
      good,
    )
    expect((await tracker.history('secrets', 'flip')).at(-1)?.newValue).toEqual({
      token: 'v2-SECRETVALUE',
    })
  })

  it("a change value copied into another record opens, and verify finds the record's hash broken", async () => {
    const { secrets, close } = stack(`ac-sec-${uid()}`)
    await trackAs({ userId: 'u' }, async () => {
      await secrets.set('alice', { token: 'alice-SECRETVALUE' })
      await secrets.set('bob', { token: 'bob-SECRETVALUE' })
    })
    await close()
    await db.prisma.$executeRawUnsafe(
      `UPDATE "${db.schema}".ac_state_changes SET new_value = (
         SELECT new_value FROM "${db.schema}".ac_state_changes
          WHERE entity_type = 'secrets' AND entity_id = 'alice')
        WHERE entity_type = 'secrets' AND entity_id = 'bob'`,
    )
    expect((await tracker.history('secrets', 'bob'))[0]?.newValue).toEqual({
      token: 'alice-SECRETVALUE',
    })
    expect(await tracker.verify('secrets', 'bob')).toMatchObject({
      ok: false,
      version: 1,
      reason: 'hash_mismatch',
    })
  })

  it('a tracked write over a tampered row fails with E_DECRYPT and writes nothing', async () => {
    // another instance wrote the rows: this one reads them under the write's lock
    const other = encryptTier(createPrismaStore({ prisma: db.prisma, changeSerializer }), {
      keyring,
      namespaces,
    })
    const writer = stack(`ac-sec-${uid()}`, other)
    await trackAs({ userId: 'u' }, async () => {
      await writer.secrets.set('a', { token: 'a-SECRETVALUE' })
      await writer.secrets.set('b', { token: 'b-SECRETVALUE' })
    })
    await writer.close()
    const { secrets, close } = stack(`ac-sec-${uid()}`)
    await db.prisma.$executeRawUnsafe(
      `UPDATE "${db.schema}".ac_cache_entries SET value = (
         SELECT value FROM "${db.schema}".ac_cache_entries WHERE namespace = 'secrets' AND key = 'b')
        WHERE namespace = 'secrets' AND key = 'a'`,
    )
    await expect(
      trackAs({ userId: 'u' }, () => secrets.set('a', { token: 'a2-SECRETVALUE' })),
    ).rejects.toMatchObject({ code: 'E_DECRYPT', namespace: 'secrets', key: 'a' })
    await expect(trackAs({ userId: 'u' }, () => secrets.delete('a'))).rejects.toMatchObject({
      code: 'E_DECRYPT',
    })
    expect((await tracker.history('secrets', 'a')).map((r) => r.version)).toEqual([1])
    const [row] = await db.prisma.$queryRawUnsafe<{ version: bigint; deleted: boolean }[]>(
      `SELECT version, deleted FROM "${db.schema}".ac_cache_entries WHERE namespace = 'secrets' AND key = 'a'`,
    )
    expect(row).toEqual({ version: 1n, deleted: false })
    await close()
  })

  it('a value a field namespace cannot encrypt is refused before any I/O', async () => {
    const { actors, close } = stack(`ac-sec-${uid()}`)
    await expect(
      trackAs({ userId: 'u' }, () => actors.set('bad', 'not an object' as never)),
    ).rejects.toMatchObject({ code: 'E_SERIALIZATION' })
    expect(await tracker.history('actors', 'bad')).toEqual([])
    expect(await l3.namespace('actors').exists('bad')).toBe(false)
    await close()
  })
})
