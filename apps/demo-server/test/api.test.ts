import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { as, startTestServer, tempDir } from './helpers.js'

let server: DemoServer
let removeDir: () => Promise<void>

beforeAll(async () => {
  const dir = await tempDir()
  removeDir = dir.remove
  server = await startTestServer(dir.path)
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

const hero = {
  name: 'Ann',
  level: 10,
  hp: 200,
  mp: 80,
  strength: 20,
  agility: 15,
  intelligence: 12,
}

describe('actors', () => {
  it('reads a seeded actor with its version as ETag', async () => {
    const res = await call('GET', '/actors/1', as('player'))
    expect(res.statusCode).toBe(200)
    expect(res.headers.etag).toBe('"1"')
    expect(res.json()).toMatchObject({ id: '1', version: 1, primaryCore: { name: 'hero-1' } })
  })

  it('creates with expected version 0, then refuses a stale version with 409 and both versions', async () => {
    const created = await call('PUT', '/actors/new-1', as('gm'), {
      primaryCore: hero,
      expectedVersion: 0,
    })
    expect(created.statusCode).toBe(200)
    expect(created.json().version).toBe(1)
    const again = await call('PUT', '/actors/new-1', as('gm'), {
      primaryCore: hero,
      expectedVersion: 0,
    })
    expect(again.statusCode).toBe(409)
    expect(again.json()).toMatchObject({ code: 'E_CONFLICT', expectedVersion: 0, actualVersion: 1 })
  })

  it('patches with If-Match, and a second patch with the same version conflicts', async () => {
    const first = await call(
      'PATCH',
      '/actors/2',
      { ...as('gm'), 'if-match': '"1"' },
      { primaryCore: { strength: 99 } },
    )
    expect(first.statusCode).toBe(200)
    expect(first.json()).toMatchObject({
      version: 2,
      primaryCore: { strength: 99, name: 'hero-2' },
    })
    const stale = await call(
      'PATCH',
      '/actors/2',
      { ...as('gm'), 'if-match': '"1"' },
      { primaryCore: { strength: 1 } },
    )
    expect(stale.statusCode).toBe(409)
    expect(stale.json()).toMatchObject({ expectedVersion: 1, actualVersion: 2 })
  })

  it('deletes with the expected version only', async () => {
    const wrong = await call('DELETE', '/actors/3', { ...as('gm'), 'if-match': '7' })
    expect(wrong.statusCode).toBe(409)
    expect((await call('DELETE', '/actors/3', { ...as('gm'), 'if-match': '1' })).statusCode).toBe(
      204,
    )
    expect((await call('GET', '/actors/3', as('gm'))).statusCode).toBe(404)
  })

  it('refuses bad input with 400 before touching the cache', async () => {
    const missing = await call('PUT', '/actors/4', as('gm'), { primaryCore: { name: 'x' } })
    expect(missing.statusCode).toBe(400)
    expect(missing.json().code).toBe('E_BAD_REQUEST')
    const extra = await call('PATCH', '/actors/4', as('gm'), { primaryCore: { luck: 3 } })
    expect(extra.statusCode).toBe(400)
    const mistyped = await call('PATCH', '/actors/4', as('gm'), { primaryCore: { level: '5' } })
    expect(mistyped.statusCode).toBe(400)
    const badId = await call('GET', '/actors/a%20b', as('gm'))
    expect(badId.statusCode).toBe(400)
    const badTag = await call(
      'PATCH',
      '/actors/4',
      { ...as('gm'), 'if-match': 'v1' },
      {
        primaryCore: { level: 5 },
      },
    )
    expect(badTag.statusCode).toBe(400)
    const disagree = await call(
      'PATCH',
      '/actors/4',
      { ...as('gm'), 'if-match': '1' },
      {
        primaryCore: { level: 5 },
        expectedVersion: 2,
      },
    )
    expect(disagree.statusCode).toBe(400)
  })

  it('answers 404 for unknown actors and routes', async () => {
    expect((await call('GET', '/actors/999999', as('player'))).json().code).toBe('E_NOT_FOUND')
    expect((await call('GET', '/nowhere', as('player'))).statusCode).toBe(404)
  })
})

describe('authentication and roles', () => {
  it('needs a known bearer token (401)', async () => {
    const none = await call('GET', '/actors/1')
    expect(none.statusCode).toBe(401)
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/)
    expect(
      (await call('GET', '/actors/1', { authorization: 'Bearer nope-nope-nope' })).statusCode,
    ).toBe(401)
  })

  it('refuses what a role may not do with 403 (E_FORBIDDEN)', async () => {
    const write = await call('PATCH', '/actors/1', as('player'), { primaryCore: { level: 2 } })
    expect(write.statusCode).toBe(403)
    expect(write.json().code).toBe('E_FORBIDDEN')
    const config = await call('PATCH', '/config', as('gm'), { config: { critCap: 0.4 } })
    expect(config.statusCode).toBe(403)
    expect((await call('GET', '/stats', as('gm'))).statusCode).toBe(403)
    expect(
      (await call('POST', '/invalidations', as('player'), { tags: ['system'] })).statusCode,
    ).toBe(403)
  })
})

describe('derived stats, equipment and config', () => {
  it('computes derived stats once, then serves them from the cache', async () => {
    const first = await call('GET', '/actors/5/derived', as('player'))
    expect(first.statusCode).toBe(200)
    expect(first.json().computed).toBe(true)
    const second = await call('GET', '/actors/5/derived', as('player'))
    expect(second.json()).toMatchObject({
      computed: false,
      derivedStats: first.json().derivedStats,
    })
  })

  it('recomputes them after an equipment change', async () => {
    const before = (await call('GET', '/actors/6/derived', as('player'))).json().derivedStats
    const equip = await call('PUT', '/actors/6/equipment', as('player'), {
      flexibleStats: {
        equipment: { weapon: { item: 'dragon blade', modifiers: { attack: 100 } } },
        buffs: [{ id: 'rage', modifiers: { strength: 5 } }],
      },
    })
    expect(equip.statusCode).toBe(200)
    const after = (await call('GET', '/actors/6/derived', as('player'))).json()
    expect(after.computed).toBe(true)
    expect(after.derivedStats.attack).toBeGreaterThan(before.attack + 90)
    const equipment = await call('GET', '/actors/6/equipment', as('player'))
    expect(equipment.json().flexibleStats.equipment.weapon.item).toBe('dragon blade')
  })

  it("a config change invalidates every actor's derived stats", async () => {
    const ids = ['7', '8', '9']
    const before = new Map<string, number>()
    for (const id of ids) {
      await call('GET', `/actors/${id}/derived`, as('player'))
      const cached = (await call('GET', `/actors/${id}/derived`, as('player'))).json()
      expect(cached.computed).toBe(false)
      before.set(id, cached.derivedStats.attack)
    }
    const config = (await call('GET', '/config', as('player'))).json()
    const changed = await call(
      'PATCH',
      '/config',
      { ...as('admin'), 'if-match': `"${config.version}"` },
      {
        config: { attackPerStrength: config.config.attackPerStrength + 1 },
      },
    )
    expect(changed.statusCode).toBe(200)
    expect(changed.json().version).toBe(config.version + 1)
    for (const id of ids) {
      const after = (await call('GET', `/actors/${id}/derived`, as('player'))).json()
      expect(after.computed).toBe(true)
      expect(after.derivedStats.sources.config).toBe(config.version + 1)
      expect(after.derivedStats.attack).toBeGreaterThan(before.get(id) as number)
    }
  })
})

describe('invalidation', () => {
  it('by key, pattern, tag and event', async () => {
    await call('GET', '/actors/10/derived', as('gm'))
    const targets = [
      { namespace: 'derived_stats', keys: ['actor:10'] },
      { namespace: 'primary_core', patterns: ['actor:1*'] },
      { namespace: 'flexible_stats', all: true },
    ]
    for (const target of targets) {
      expect((await call('POST', '/invalidations', as('gm'), target)).statusCode).toBe(204)
    }
    expect(
      (await call('POST', '/invalidations', as('admin'), { tags: ['system'] })).statusCode,
    ).toBe(204)
    const event = await call('POST', '/invalidations/events/stat_updated', as('gm'), {
      params: { entityId: 'actor:10' },
    })
    expect(event.statusCode).toBe(204)
    const unknown = await call('POST', '/invalidations/events/no_such_event', as('admin'), {})
    expect(unknown.statusCode).toBe(400)
    expect((await call('GET', '/actors/10/derived', as('gm'))).statusCode).toBe(200)
  })
})

describe('operations', () => {
  it('serves Prometheus metrics, health, statistics and the OpenAPI document', async () => {
    const metrics = await call('GET', '/metrics')
    expect(metrics.statusCode).toBe(200)
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/)
    expect(metrics.body).toMatch(/actor_cache_reads_total\{namespace="derived_stats"\}/)
    const live = await call('GET', '/health/live')
    expect(live.json()).toMatchObject({ live: true })
    const ready = await call('GET', '/health/ready')
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toMatchObject({ ready: true, readyForWrites: true })
    const stats = await call('GET', '/stats', as('admin'))
    expect(stats.statusCode).toBe(200)
    expect(stats.json().tiers.record).toMatch(/PGlite/)
    // repeated reads are answered by the response cache, whose namespace counts the L1 hits
    expect(stats.json().namespaces.api_responses.l1Hits).toBeGreaterThan(0)
    expect(stats.json().namespaces.api_responses.loads).toBeGreaterThan(0)
    expect(stats.json().l1.entries).toBeGreaterThan(0)
    const openapi = (await call('GET', '/openapi.json')).json()
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/actors/{id}', '/actors/{id}/derived', '/config', '/invalidations']),
    )
  })

  it('answers over a real socket', async () => {
    const res = await fetch(`${server.url}/actors/1`, { headers: as('player') })
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toMatch(/^"\d+"$/)
    expect(((await res.json()) as { id: string }).id).toBe('1')
  })
})
