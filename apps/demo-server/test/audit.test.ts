import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { as, startTestServer, tempDir } from './helpers.js'

let server: DemoServer
let removeDir: () => Promise<void>

beforeAll(async () => {
  const dir = await tempDir()
  removeDir = dir.remove
  // actors carry no personal data: the name stands in for a sensitive field here
  server = await startTestServer(dir.path, {
    adjust: (s) => ({
      ...s,
      demo: { ...s.demo, audit: { ...s.demo.audit, sensitiveFields: { primary_core: ['name'] } } },
    }),
  })
})

afterAll(async () => {
  await server?.close()
  await removeDir?.()
})

const call = (
  method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST',
  url: string,
  headers: Record<string, string> = {},
  payload?: object,
) => server.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) })

const history = async (id: string, type = 'primary_core') =>
  (await call('GET', `/actors/${id}/history?entityType=${type}`, as('gm'))).json().records

describe('tracked writes', () => {
  it("logs an update through the API with the token's user, after the seeded create", async () => {
    const res = await call('PATCH', '/actors/1', as('gm'), { primaryCore: { strength: 50 } })
    expect(res.statusCode).toBe(200)
    const records = await history('1')
    expect(records.map((r: { version: number }) => r.version)).toEqual([1, 2])
    expect(records[0]).toMatchObject({ changeType: 'create', userId: 'system:seed' })
    expect(records[1]).toMatchObject({
      changeType: 'update',
      userId: 'gm-1',
      systemId: 'demo-server',
      entityId: 'actor:1',
      newValue: { strength: 50, name: '[REDACTED]' },
    })
    const equipment = await call('PUT', '/actors/1/equipment', as('player'), {
      flexibleStats: { equipment: {}, buffs: [] },
    })
    expect(equipment.statusCode).toBe(200)
    const both = (await call('GET', '/actors/1/history', as('admin'))).json().records
    expect(both.at(-1)).toMatchObject({ entityType: 'flexible_stats', userId: 'player-1' })
  })

  it('verifies the chain against the stored state', async () => {
    const res = await call('GET', '/actors/1/verify', as('gm'))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ ok: true, records: 2, head: { version: 2, exists: true } })
    const flexible = await call('GET', '/actors/1/verify?entityType=flexible_stats', as('admin'))
    expect(flexible.json()).toMatchObject({ ok: true, records: 2 })
  })

  it('logs a delete with its expected version, and refuses a stale one without deleting', async () => {
    expect((await call('DELETE', '/actors/2', { ...as('gm'), 'if-match': '"3"' })).statusCode).toBe(
      409,
    )
    expect((await call('GET', '/actors/2', as('gm'))).statusCode).toBe(200)
    expect((await call('GET', '/actors/2/equipment', as('gm'))).json().version).toBe(1)
    expect((await call('DELETE', '/actors/2', { ...as('gm'), 'if-match': '"1"' })).statusCode).toBe(
      204,
    )
    expect((await history('2')).at(-1)).toMatchObject({ changeType: 'delete', userId: 'gm-1' })
    expect((await call('GET', '/actors/2/verify', as('gm'))).json().ok).toBe(true)
  })
})

describe('point-in-time reads and rollback', () => {
  it('reads the state at a version', async () => {
    await call('PATCH', '/actors/3', as('gm'), { primaryCore: { level: 44 } })
    const at1 = await call('GET', '/actors/3/state?version=1', as('gm'))
    expect(at1.json()).toMatchObject({ exists: true, version: 1, value: { level: 4 } })
    const now = await call('GET', `/actors/3/state?time=${Date.now() + 1000}`, as('gm'))
    expect(now.json()).toMatchObject({ version: 2, value: { level: 44 } })
    expect((await call('GET', '/actors/3/state', as('gm'))).statusCode).toBe(400)
  })

  it('rolls back to a version as a new change, and GET shows the value', async () => {
    const res = await call('POST', '/actors/3/rollback', as('admin'), { toVersion: 1 })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ changed: true, version: 3, state: { exists: true } })
    const actor = await call('GET', '/actors/3', as('player'))
    expect(actor.json()).toMatchObject({ version: 3, primaryCore: { level: 4, name: 'hero-3' } })
    expect((await history('3')).at(-1)).toMatchObject({
      version: 3,
      changeType: 'update',
      userId: 'admin-1',
      newValue: { level: 4 },
    })
    expect((await call('GET', '/actors/3/verify', as('gm'))).json().ok).toBe(true)
  })

  it('refuses to undo a change whose fields changed since with 409 naming them, unless forced', async () => {
    await call('PATCH', '/actors/4', as('gm'), { primaryCore: { strength: 30 } }) // v2
    const v2 = (await history('4'))[1].id
    await call('PATCH', '/actors/4', as('gm'), { primaryCore: { strength: 31, hp: 999 } }) // v3
    const res = await call('POST', '/actors/4/rollback', as('gm'), { undo: v2 })
    expect(res.statusCode).toBe(409)
    expect(res.json()).toMatchObject({
      code: 'E_UNDO_CONFLICT',
      changeId: v2,
      fields: ['strength'],
    })
    expect((await call('GET', '/actors/4', as('gm'))).json().version).toBe(3)
    const forced = await call('POST', '/actors/4/rollback', as('gm'), { undo: v2, force: true })
    expect(forced.statusCode).toBe(200)
    const after = (await call('GET', '/actors/4', as('gm'))).json()
    expect(after.primaryCore).toMatchObject({ strength: 5 + (4 % 20), hp: 999 })
  })

  it('refuses a rollback with two targets, or to a version past the newest (400)', async () => {
    const two = await call('POST', '/actors/5/rollback', as('gm'), { toVersion: 1, undo: 'x' })
    expect(two.statusCode).toBe(400)
    const past = await call('POST', '/actors/5/rollback', as('gm'), { toVersion: 9 })
    expect(past.statusCode).toBe(400)
  })
})

describe('the audit trail', () => {
  it('pages through records with cursors, without repeats, masking sensitive fields', async () => {
    for (let i = 0; i < 4; i++) {
      await call('PATCH', '/actors/6', as('gm'), { primaryCore: { hp: 500 + i } })
    }
    const seen: number[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const q = `entityId=actor:6&entityType=primary_core&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
      const res = await call('GET', `/audit?${q}`, as('gm'))
      expect(res.statusCode).toBe(200)
      const page = res.json()
      expect(page.records.length).toBeLessThanOrEqual(2)
      for (const r of page.records) {
        seen.push(r.version)
        expect(r.newValue.name).toBe('[REDACTED]')
      }
      cursor = page.nextCursor
      pages++
    } while (cursor !== undefined && pages < 10)
    expect(seen).toEqual([1, 2, 3, 4, 5])
    const byUser = (
      await call('GET', '/audit?userId=gm-1&changeType=update&limit=1000', as('admin'))
    ).json()
    expect(byUser.records.length).toBeGreaterThanOrEqual(4)
    expect(byUser.records.every((r: { userId: string }) => r.userId === 'gm-1')).toBe(true)
    const later = await call(
      'GET',
      `/audit?from=${new Date(Date.now() + 60_000).toISOString()}`,
      as('gm'),
    )
    expect(later.json().records).toEqual([])
    expect((await call('GET', '/audit?from=yesterday', as('gm'))).statusCode).toBe(400)
  })

  it('exports JSON lines with sensitive fields masked', async () => {
    const res = await call(
      'GET',
      '/audit/export?entityId=actor:6&entityType=primary_core',
      as('gm'),
    )
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/)
    const lines = res.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(5)
    expect(lines.map((l) => l.version)).toEqual([1, 2, 3, 4, 5])
    expect(lines[4].newValue).toMatchObject({ name: '[REDACTED]', hp: 503 })
    expect(res.body).not.toContain('hero-6')
  })

  it('takes a checkpoint and verifies the log against it', async () => {
    const taken = await call('POST', '/audit/checkpoints', as('admin'))
    expect(taken.statusCode).toBe(201)
    const checkpoint = taken.json()
    expect(checkpoint.records).toBeGreaterThan(80)
    const ok = await call('POST', '/audit/checkpoints/verify', as('admin'), checkpoint)
    expect(ok.json()).toMatchObject({ ok: true, records: checkpoint.records })
    const forged = { ...checkpoint, digest: '0'.repeat(64) }
    const bad = await call('POST', '/audit/checkpoints/verify', as('admin'), forged)
    expect(bad.json()).toMatchObject({ ok: false, reason: 'digest' })
  })

  it('refuses players on every audit route, and game masters on checkpoints (403)', async () => {
    const refused = [
      ['GET', '/audit'],
      ['GET', '/audit/export'],
      ['GET', '/actors/1/history'],
      ['GET', '/actors/1/verify'],
      ['GET', '/actors/1/state?version=1'],
    ] as const
    for (const [method, url] of refused) {
      const res = await call(method, url, as('player'))
      expect(res.statusCode, url).toBe(403)
      expect(res.json().code).toBe('E_FORBIDDEN')
    }
    const rollback = await call('POST', '/actors/1/rollback', as('player'), { toVersion: 1 })
    expect(rollback.statusCode).toBe(403)
    expect((await call('POST', '/audit/checkpoints', as('gm'))).statusCode).toBe(403)
  })
})
