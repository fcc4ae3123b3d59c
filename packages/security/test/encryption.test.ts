import { inspect } from 'node:util'
import { createCodec, DecodeError, isActorCacheError } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { createRedisStore } from '@actor-cache/redis'
import { createTieredCache } from '@actor-cache/strategies'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createKeyring,
  ENCRYPTED_PREFIX,
  encryptionTransform,
  encryptTier,
  keyringFromEnv,
  keyringFromFile,
  keyringFromKms,
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
  profile?: { phone?: string; level: number }
}

/** An encrypted memory tier and the plain tier under it (to see and tamper with what is stored). */
function memoryPair(keyring = createKeyring({ keys: [k1] })) {
  const plain = createMemCache()
  const tier = encryptTier(plain, {
    keyring,
    namespaces: { secrets: 'value', actors: ['email', 'profile.phone'] },
  })
  return { plain, tier }
}

const flip = (text: string, byte: number, bit: number): string => {
  const bytes = Buffer.from(text.slice(ENCRYPTED_PREFIX.length), 'base64')
  bytes[byte % bytes.length] = (bytes[byte % bytes.length] as number) ^ (1 << bit)
  return ENCRYPTED_PREFIX + bytes.toString('base64')
}

describe('encryptTier', () => {
  it('round-trips whole values and fields, storing only envelopes', async () => {
    const { plain, tier } = memoryPair()
    const secrets = tier.namespace<{ token: string }>('secrets')
    await secrets.set('s:1', { token: 'hunter2' })
    expect((await secrets.get('s:1'))?.value).toEqual({ token: 'hunter2' })
    const raw = await plain.namespace('secrets').get('s:1')
    expect(typeof raw?.value).toBe('string')
    expect(String(raw?.value).startsWith(ENCRYPTED_PREFIX)).toBe(true)
    expect(String(raw?.value)).not.toContain('hunter2')

    const actors = tier.namespace<Actor>('actors')
    const actor = {
      name: 'Ann',
      email: 'ann@example.com',
      profile: { phone: '555-0100', level: 3 },
    }
    await actors.setMany([{ key: 'a:1', value: actor }])
    expect((await actors.getMany(['a:1', 'a:2'])).map((e) => e?.value)).toEqual([actor, undefined])
    const stored = (await plain.namespace('actors').get('a:1'))?.value as Actor
    expect(stored.name).toBe('Ann')
    expect(stored.profile?.level).toBe(3)
    expect(stored.email.startsWith(ENCRYPTED_PREFIX)).toBe(true)
    expect(stored.profile?.phone?.startsWith(ENCRYPTED_PREFIX)).toBe(true)
    expect(JSON.stringify(stored)).not.toMatch(/ann@example|555-0100/)
    // a namespace not listed is stored as it is
    await tier.namespace('public').set('p', { x: 1 })
    expect((await plain.namespace('public').get('p'))?.value).toEqual({ x: 1 })
    await plain.close()
  })

  it('uses a fresh nonce per write: equal values give different ciphertexts', async () => {
    const { plain, tier } = memoryPair()
    const s = tier.namespace('secrets')
    await s.set('a', 'same')
    await s.set('b', 'same')
    const raw = plain.namespace('secrets')
    expect((await raw.get('a'))?.value).not.toBe((await raw.get('b'))?.value)
    await plain.close()
  })

  it('any bit flipped in header, key id, nonce, ciphertext or tag fails with E_DECRYPT', async () => {
    const { plain, tier } = memoryPair()
    const s = tier.namespace('secrets')
    const raw = plain.namespace('secrets')
    await s.set('x', { hp: 10, secret: 'plaintext-marker' })
    const good = String((await raw.get('x'))?.value)
    const length = Buffer.from(good.slice(ENCRYPTED_PREFIX.length), 'base64').length
    await assertReplayable(
      fc.asyncProperty(fc.nat({ max: length - 1 }), fc.nat({ max: 7 }), async (byte, bit) => {
        await raw.set('x', flip(good, byte, bit))
        const error = await s.get('x').then(
          (e) => e,
          (err: unknown) => err,
        )
        return isActorCacheError(error, 'E_DECRYPT') && error instanceof DecodeError
      }),
      300,
    )
    // and every byte position at least once
    for (let byte = 0; byte < length; byte++) {
      await raw.set('x', flip(good, byte, byte % 8))
      await expect(s.get('x')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    }
    await plain.close()
  })

  it('a ciphertext copied to another key, namespace or field fails with E_DECRYPT', async () => {
    const plain = createMemCache()
    const tier = encryptTier(plain, {
      keyring: createKeyring({ keys: [k1] }),
      namespaces: { secrets: 'value', vault: 'value', actors: ['email', 'backup'] },
    })
    await tier.namespace('secrets').set('alice', 'alice-secret')
    const copied = (await plain.namespace('secrets').get('alice'))?.value
    await plain.namespace('secrets').set('mallory', copied)
    await expect(tier.namespace('secrets').get('mallory')).rejects.toMatchObject({
      code: 'E_DECRYPT',
      namespace: 'secrets',
      key: 'mallory',
    })
    await plain.namespace('vault').set('alice', copied)
    await expect(tier.namespace('vault').get('alice')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    await tier.namespace('actors').set('a', { email: 'e@x', backup: 'b' })
    const row = (await plain.namespace('actors').get('a'))?.value as Record<string, string>
    await plain.namespace('actors').set('a', { email: row.backup, backup: row.email })
    await expect(tier.namespace('actors').get('a')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    await plain.close()
  })

  it('plaintext planted where ciphertext belongs fails with E_DECRYPT (fail closed)', async () => {
    const { plain, tier } = memoryPair()
    await plain.namespace('secrets').set('x', 'not encrypted')
    await expect(tier.namespace('secrets').get('x')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    await plain.namespace('secrets').set('y', { token: 'x' })
    await expect(tier.namespace('secrets').get('y')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    await plain.namespace('actors').set('a', { name: 'n', email: 'plain@example.com' })
    await expect(tier.namespace('actors').get('a')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    await plain.namespace('actors').set('b', 'not an object')
    await expect(tier.namespace('actors').get('b')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    await plain.close()
  })

  it('a swapped key id fails with E_DECRYPT, even when that key exists', async () => {
    const plain = createMemCache()
    const ring = createKeyring({ keys: [k1, k2], primary: 'k1' })
    const tier = encryptTier(plain, { keyring: ring, namespaces: { secrets: 'value' } })
    await tier.namespace('secrets').set('x', 'v')
    const text = String((await plain.namespace('secrets').get('x'))?.value)
    const bytes = Buffer.from(text.slice(ENCRYPTED_PREFIX.length), 'base64')
    expect(bytes.toString('latin1', 2, 4)).toBe('k1')
    bytes.write('k2', 2, 'latin1')
    await plain.namespace('secrets').set('x', ENCRYPTED_PREFIX + bytes.toString('base64'))
    await expect(tier.namespace('secrets').get('x')).rejects.toMatchObject({
      code: 'E_DECRYPT',
      keyId: 'k2',
    })
    bytes.write('k9', 2, 'latin1')
    await plain.namespace('secrets').set('x', ENCRYPTED_PREFIX + bytes.toString('base64'))
    await expect(tier.namespace('secrets').get('x')).rejects.toThrow(/does not hold/)
    await plain.close()
  })

  it('rotation: old values stay readable, new writes use the new primary key', async () => {
    const plain = createMemCache()
    const before = encryptTier(plain, {
      keyring: createKeyring({ keys: [k1] }),
      namespaces: { secrets: 'value' },
    })
    await before.namespace('secrets').set('old', 'written with k1')
    const after = encryptTier(plain, {
      keyring: createKeyring({ keys: [k1, k2] }), // primary: the last key
      namespaces: { secrets: 'value' },
    })
    expect((await after.namespace('secrets').get('old'))?.value).toBe('written with k1')
    await after.namespace('secrets').set('new', 'written with k2')
    const raw = plain.namespace('secrets')
    expect(storedKeyId((await raw.get('old'))?.value)).toBe('k1')
    expect(storedKeyId((await raw.get('new'))?.value)).toBe('k2')
    // re-encrypt: read and write back; then k1 can leave the keyring
    await after
      .namespace('secrets')
      .set('old', (await after.namespace('secrets').get('old'))?.value)
    expect(storedKeyId((await raw.get('old'))?.value)).toBe('k2')
    const retired = encryptTier(plain, {
      keyring: createKeyring({ keys: [k2] }),
      namespaces: { secrets: 'value' },
    })
    expect((await retired.namespace('secrets').get('old'))?.value).toBe('written with k1')
    await plain.close()
  })

  it('field namespaces refuse values that are not plain objects, before any write', async () => {
    const { plain, tier } = memoryPair()
    const actors = tier.namespace('actors')
    for (const bad of ['ann@example.com', 42, null, ['ann@example.com']]) {
      await expect(actors.set('a', bad)).rejects.toMatchObject({ code: 'E_SERIALIZATION' })
    }
    expect(await plain.namespace('actors').exists('a')).toBe(false)
    await plain.close()
  })
})

describe('keyrings', () => {
  const keyB64 = Buffer.from(testKey(7)).toString('base64')

  it('never print key material', async () => {
    const ring = createKeyring({ keys: [{ id: 'k7', key: keyB64 }] })
    for (const shown of [
      inspect(ring, { depth: 10, showHidden: true }),
      JSON.stringify(ring),
      String(ring),
    ]) {
      expect(shown).toContain('k7')
      expect(shown).not.toContain(keyB64)
      expect(shown).not.toContain(keyB64.slice(0, 12))
    }
  })

  it('refuse bad keys with errors that name the option, never the key', () => {
    const short = Buffer.from(testKey(7).subarray(0, 31)).toString('base64')
    const attempts: [unknown, RegExp][] = [
      [{ keys: [] }, /at least one key/],
      [{ keys: [{ id: 'k', key: short }] }, /32 bytes/],
      [{ keys: [{ id: 'k', key: `${keyB64}!` }] }, /base64/],
      [{ keys: [{ id: 'bad id', key: keyB64 }] }, /keys\[0\]\.id/],
      [
        {
          keys: [
            { id: 'k', key: keyB64 },
            { id: 'k', key: keyB64 },
          ],
        },
        /twice/,
      ],
      [{ keys: [{ id: 'k', key: keyB64 }], primary: 'nope' }, /primary/],
    ]
    for (const [options, message] of attempts) {
      let error: unknown
      try {
        createKeyring(options as never)
      } catch (e) {
        error = e
      }
      expect(isActorCacheError(error, 'E_INVALID_OPTION')).toBe(true)
      expect(String((error as Error).message)).toMatch(message)
      expect(String((error as Error).message)).not.toContain(short)
      expect(String((error as Error).message)).not.toContain(keyB64)
    }
  })

  it('load from the environment, a file and a KMS callback', async () => {
    const env = {
      ACTOR_CACHE_KEY_a: keyB64,
      ACTOR_CACHE_KEY_b: Buffer.from(testKey(8)).toString('base64url'),
      ACTOR_CACHE_PRIMARY_KEY: 'a',
    }
    const fromEnv = keyringFromEnv(env)
    expect(fromEnv.ids()).toEqual(['a', 'b'])
    expect(fromEnv.primary).toBe('a')
    expect(() => keyringFromEnv({ ACTOR_CACHE_KEY_x: 'short' })).toThrow(/ACTOR_CACHE_KEY_x/)
    const { writeFile, mkdtemp } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const dir = await mkdtemp(`${tmpdir()}/ac-keys-`)
    await writeFile(`${dir}/keys.json`, JSON.stringify({ primary: 'f1', keys: { f1: keyB64 } }))
    expect((await keyringFromFile(`${dir}/keys.json`)).primary).toBe('f1')
    await expect(keyringFromFile(`${dir}/missing.json`)).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
    const kms = await keyringFromKms(async () => ({ keys: [{ id: 'kms-1', key: testKey(9) }] }))
    expect(kms.ids()).toEqual(['kms-1'])
  })
})

describe('encryptionTransform (core codec pipeline)', () => {
  it('binds the namespace: tampering and another namespace fail with E_DECRYPT', () => {
    const keyring = createKeyring({ keys: [k1] })
    const codec = createCodec({ transforms: [encryptionTransform({ keyring, namespace: 'pii' })] })
    const other = createCodec({
      transforms: [encryptionTransform({ keyring, namespace: 'other' })],
    })
    const data = codec.encode({ email: 'a@b' }) as Uint8Array
    expect(codec.decode(data)).toEqual({ email: 'a@b' })
    expect(Buffer.from(data).toString('latin1')).not.toContain('a@b')
    expect(() => other.decode(data)).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }))
    const bad = Uint8Array.from(data)
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1
    expect(() => codec.decode(bad)).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }))
  })
})

describe('through a TieredCache with Redis and PostgreSQL', () => {
  let client: Redis
  let db: TestDb
  beforeAll(async () => {
    client = await redis()
    db = await postgres()
  })
  afterAll(async () => {
    await client?.close()
    await db?.drop()
  })

  it('leaves no plaintext of the sensitive namespace or field in Redis or the table', async () => {
    const prefix = `ac-sec-${uid()}`
    const keyring = createKeyring({ keys: [k1, k2] })
    const namespaces = { secrets: 'value', actors: ['email'] } as const
    const l1 = createMemCache()
    const l2 = encryptTier(createRedisStore({ client: asStoreClient(client), prefix }), {
      keyring,
      namespaces,
    })
    const l3 = encryptTier(createPrismaStore({ prisma: db.prisma }), { keyring, namespaces })
    const cache = createTieredCache({ l1, l2, l3 })
    const actors = cache.namespace<Actor>('actors')
    const secrets = cache.namespace<{ token: string }>('secrets')
    const emails: string[] = []
    for (let i = 0; i < 20; i++) {
      const email = `player${i}.mail@example.org`
      emails.push(email)
      await actors.set(`actor:${i}`, { name: `Name${i}`, email })
      await secrets.set(`actor:${i}`, { token: `tok-${i}-SECRETVALUE` })
    }
    await cache.close()

    const raw = [...(await scanValues(client, `${prefix}:`)).entries()]
    expect(raw.length).toBeGreaterThanOrEqual(40)
    const redisText = raw.map(([k, v]) => `${k}\n${v}`).join('\n')
    expect(redisText).toContain('Name7') // the public field is there: the scan reads the values
    for (const email of emails) expect(redisText).not.toContain(email)
    expect(redisText).not.toMatch(/SECRETVALUE|mail@example/)

    const rows = await db.prisma.$queryRawUnsafe<{ row: string }[]>(
      `SELECT row_to_json(t)::text AS row FROM "${db.schema}".ac_cache_entries t`,
    )
    expect(rows.length).toBe(40)
    const dbText = rows.map((r) => r.row).join('\n')
    expect(dbText).toContain('Name7')
    expect(dbText).not.toMatch(/SECRETVALUE|mail@example/)

    // a new instance (cold L1) reads plaintext back from L2, and from L3 once L2 is gone
    const l1b = createMemCache()
    const again = createTieredCache({ l1: l1b, l2, l3 })
    expect(await again.namespace<Actor>('actors').get('actor:3')).toEqual({
      name: 'Name3',
      email: 'player3.mail@example.org',
    })
    await client.unlink([...raw.map(([k]) => k)])
    expect(await again.namespace<{ token: string }>('secrets').get('actor:4')).toEqual({
      token: 'tok-4-SECRETVALUE',
    })
    await again.close()
    await Promise.all([l1.close(), l1b.close()])
  })

  it('write-behind through encrypted tiers: versions count 1, 2, 3 and nothing lands in plaintext', async () => {
    const prefix = `ac-sec-${uid()}`
    const keyring = createKeyring({ keys: [k1] })
    const namespaces = { secrets: 'value' } as const
    const l2 = encryptTier(createRedisStore({ client: asStoreClient(client), prefix }), {
      keyring,
      namespaces,
    })
    const l3 = encryptTier(createPrismaStore({ prisma: db.prisma }), { keyring, namespaces })
    const cache = createTieredCache({ l1: createMemCache(), l2, l3 })
    const secrets = cache.namespace<{ token: string }>('secrets', { strategy: 'write_behind' })
    const versions: number[] = []
    for (let i = 0; i < 3; i++) {
      versions.push((await secrets.set('wb', { token: `tok-${i}-BEHINDSECRET` })).version)
    }
    await cache.invalidate({ namespace: 'secrets', keys: ['wb'] })
    versions.push((await secrets.set('wb', { token: 'tok-3-BEHINDSECRET' })).version)
    expect(versions).toEqual([1, 2, 3, 4])
    await cache.close()
    const raw = [...(await scanValues(client, `${prefix}:`)).entries()]
    expect(raw.some(([k]) => k.includes('#head'))).toBe(true) // the scan sees the heads too
    expect(raw.map(([k, v]) => `${k}\n${v}`).join('\n')).not.toMatch(/BEHINDSECRET/)
    const rows = await db.prisma.$queryRawUnsafe<{ row: string }[]>(
      `SELECT row_to_json(t)::text AS row FROM "${db.schema}".ac_cache_entries t WHERE key = 'wb'`,
    )
    expect(rows.map((r) => r.row).join('\n')).not.toMatch(/BEHINDSECRET/)
    expect(rows.map((r) => JSON.parse(r.row).version)).toEqual([4])
  })

  it('a tampered row in the store of record fails reads with E_DECRYPT, never plaintext', async () => {
    const prefix = `ac-sec-${uid()}`
    const keyring = createKeyring({ keys: [k1] })
    const namespaces = { vault: 'value' } as const
    const l3 = encryptTier(createPrismaStore({ prisma: db.prisma }), { keyring, namespaces })
    const l2 = encryptTier(createRedisStore({ client: asStoreClient(client), prefix }), {
      keyring,
      namespaces,
    })
    const cache = createTieredCache({ l2, l3 })
    const vault = cache.namespace<string>('vault')
    await vault.set('a', 'alpha-secret')
    await vault.set('b', 'beta-secret')
    // copy b's ciphertext over a's row, and drop the Redis copies so the read reaches the record
    await db.prisma.$executeRawUnsafe(
      `UPDATE "${db.schema}".ac_cache_entries SET value = (SELECT value FROM "${db.schema}".ac_cache_entries WHERE namespace = 'vault' AND key = 'b') WHERE namespace = 'vault' AND key = 'a'`,
    )
    await cache.invalidate({ namespace: 'vault', all: true })
    await expect(vault.get('a')).rejects.toMatchObject({ code: 'E_DECRYPT' })
    expect(await vault.get('b')).toBe('beta-secret')
    await cache.close()
  })
})
