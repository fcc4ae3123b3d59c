import { ENCRYPTED_PREFIX } from '@actor-cache/security'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { DEMO_KEY_ID, openEncryption } from '../src/encryption.js'
import { loadSettings } from '../src/settings.js'
import { as, startTestServer, tempDir } from './helpers.js'
import { privateRedis, type RedisServer, type TestSchema, testSchema } from './servers.js'

interface Actor {
  primaryCore: { name: string; level: number; email?: string }
}

const EMAIL = 'ann.secret-mailbox@example.org'
const SECRET = /secret-mailbox|hero-\d+@example\.com/

let redis: RedisServer | undefined
let schema: TestSchema | undefined
let server: DemoServer | undefined
let removeDir: (() => Promise<void>) | undefined

beforeAll(async () => {
  redis = await privateRedis()
  schema = await testSchema('demo_enc')
  const dir = await tempDir()
  removeDir = dir.remove
  server = await startTestServer(dir.path, {
    redisUrl: redis.url,
    databaseUrl: schema.url,
    seedActors: 5,
    // no ACTOR_CACHE_KEY_<ID> variable: the file's demo key
    env: {},
  })
})

afterAll(async () => {
  await server?.close()
  await redis?.kill()
  await schema?.drop()
  await removeDir?.()
})

/** Every key of the private Redis with its value as text, whatever its type. */
async function redisDump(url: string): Promise<string> {
  const client = createClient({ url, socket: { reconnectStrategy: false } })
  client.on('error', () => {})
  await client.connect()
  try {
    const parts: string[] = []
    for await (const keys of client.scanIterator({ COUNT: 1000 })) {
      for (const key of keys) {
        const type = await client.type(key)
        let value: unknown
        if (type === 'string') value = await client.get(key)
        else if (type === 'hash') value = await client.hGetAll(key)
        else if (type === 'list') value = await client.lRange(key, 0, -1)
        else if (type === 'set') value = await client.sMembers(key)
        else if (type === 'zset') value = await client.zRange(key, 0, -1)
        else if (type === 'stream') value = await client.xRange(key, '-', '+')
        else value = `<${type}>`
        parts.push(`${key}\n${JSON.stringify(value)}`)
      }
    }
    return parts.join('\n')
  } finally {
    client.destroy()
  }
}

/** Every row of the store's tables in the test's schema, as JSON text. */
async function databaseDump(s: TestSchema): Promise<{ entries: string; changes: string }> {
  const rows = async (table: string) =>
    (
      await s.query<{ row: string }>(
        `SELECT row_to_json(t)::text AS row FROM "${s.name}".${table} t`,
      )
    )
      .map((r) => r.row)
      .join('\n')
  return { entries: await rows('ac_cache_entries'), changes: await rows('ac_state_changes') }
}

describe('the account email, encrypted at rest', () => {
  it('is answered in clear to game masters and admins, masked to players', async () => {
    const s = server!
    const patch = await s.app.inject({
      method: 'PATCH',
      url: '/actors/1',
      headers: as('gm'),
      payload: { primaryCore: { email: EMAIL, level: 7 } },
    })
    expect(patch.statusCode).toBe(200)
    expect(patch.json().primaryCore).toMatchObject({ email: EMAIL, level: 7 })
    for (const role of ['gm', 'admin'] as const) {
      const res = await fetch(`${s.url}/actors/1`, { headers: as(role) })
      expect(((await res.json()) as Actor).primaryCore, role).toMatchObject({
        email: EMAIL,
        name: 'hero-1',
      })
    }
    const player = (await (
      await fetch(`${s.url}/actors/1`, { headers: as('player') })
    ).json()) as Actor
    expect(player.primaryCore).toMatchObject({ email: '[REDACTED]', name: 'hero-1', level: 7 })
    const seeded = (await (
      await fetch(`${s.url}/actors/2`, { headers: as('admin') })
    ).json()) as Actor
    expect(seeded.primaryCore.email).toBe('hero-2@example.com')
    const badEmail = await s.app.inject({
      method: 'PATCH',
      url: '/actors/2',
      headers: as('gm'),
      payload: { primaryCore: { email: 'not an email' } },
    })
    expect(badEmail.statusCode).toBe(400)
  })

  it('leaves no plaintext email in Redis, in the rows of PostgreSQL, nor in the change log', async () => {
    const s = server!
    // a second write: the change log holds the old and the new email
    await s.app.inject({
      method: 'PATCH',
      url: '/actors/1',
      headers: as('gm'),
      payload: { primaryCore: { email: `x.${EMAIL}` } },
    })
    // a read through another actor puts its seeded row's copy in Redis as well, and the game
    // master's answers (email in clear) in the response cache
    await fetch(`${s.url}/actors/3`, { headers: as('gm') })
    expect((await fetch(`${s.url}/actors/1`, { headers: as('gm') })).status).toBe(200)
    const inRedis = await redisDump(redis!.url)
    expect(inRedis).toContain('hero-1') // the scan reads the values: the public fields are there
    expect(inRedis).toContain(ENCRYPTED_PREFIX)
    expect(inRedis).toContain('api_responses') // the response cache's copies are there too
    expect(inRedis).not.toMatch(SECRET)

    const { entries, changes } = await databaseDump(schema!)
    expect(entries).toContain('hero-1')
    expect(entries).toContain(ENCRYPTED_PREFIX)
    expect(entries).not.toMatch(SECRET)
    // the change log's values are envelopes whole: not even the public fields are readable
    expect(changes).toContain(ENCRYPTED_PREFIX)
    expect(changes).not.toMatch(SECRET)
    expect(changes).not.toContain('hero-1')
  })

  it('masks the email in the audit trail, its export and the inspector; the chain verifies', async () => {
    const s = server!
    const history = await s.app.inject({ url: '/actors/1/history', headers: as('gm') })
    expect(history.statusCode).toBe(200)
    const records = (
      history.json().records as { entityType: string; newValue: { email?: string } | null }[]
    ).filter((r) => r.entityType === 'primary_core')
    expect(records.length).toBe(3) // seeded, then the two writes above
    for (const r of records) expect(r.newValue?.email).toBe('[REDACTED]')
    expect(history.body).not.toMatch(SECRET)
    const audit = await s.app.inject({ url: '/audit?entityId=actor:1', headers: as('admin') })
    expect(audit.statusCode).toBe(200)
    expect(audit.body).toContain('[REDACTED]')
    expect(audit.body).not.toMatch(SECRET)
    const exported = await s.app.inject({ url: '/audit/export', headers: as('admin') })
    expect(exported.statusCode).toBe(200)
    expect(exported.body).toContain('hero-1')
    expect(exported.body).not.toMatch(SECRET)
    const inspect = await s.app.inject({ url: '/actors/1/inspect', headers: as('gm') })
    expect(inspect.statusCode).toBe(200)
    expect(inspect.body).not.toMatch(SECRET)
    const verify = await s.app.inject({ url: '/actors/1/verify', headers: as('gm') })
    expect(verify.json()).toMatchObject({ ok: true })
  })

  it('takes the keys from the environment, and says which variable is wrong', async () => {
    const settings = (await loadSettings()).demo.encryption!
    expect(settings.fields).toEqual({ primary_core: ['email'], api_responses: 'value' })
    expect(openEncryption(settings, {}).demoKey).toBe(true)
    expect(openEncryption(settings, {}).keySource).toMatch(/NOT FOR PRODUCTION/)
    const key = Buffer.alloc(32, 7).toString('base64')
    const fromEnv = openEncryption(settings, { ACTOR_CACHE_KEY_K2: key })
    expect(fromEnv.demoKey).toBe(false)
    expect(fromEnv.keySource).toMatch('"K2"')
    expect(() => openEncryption(settings, { ACTOR_CACHE_KEY_K2: 'c2hvcnQ=' })).toThrow(
      /ACTOR_CACHE_KEY_K2.*32 bytes/,
    )
    const noKey = { ...settings, keys: { ...settings.keys, demoKey: undefined } }
    expect(() => openEncryption(noKey, {})).toThrow(/no key is set/)
    expect(DEMO_KEY_ID).toBe('demo')
  })
})
