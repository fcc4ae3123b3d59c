import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import type { Purge } from '../src/http/response-purge.js'
import { as, startTestServer, tempDir } from './helpers.js'

let server: DemoServer
let removeDir: () => Promise<void>
const purges: Purge[] = []

beforeAll(async () => {
  const dir = await tempDir()
  removeDir = dir.remove
  server = await startTestServer(dir.path, {
    onPurge: (purge) => {
      purges.push(purge)
      // a failing CDN call must not fail the write
      if (purge.tags.includes('primary_core:actor:20')) throw new Error('CDN down')
    },
  })
})

afterAll(async () => {
  await server?.close()
  await removeDir?.()
})

type Role = Parameters<typeof as>[0]
const get = (url: string, headers: Record<string, string> = {}, role: Role = 'player') =>
  server.app.inject({ method: 'GET', url, headers: { ...as(role), ...headers } })
const write = (method: 'PUT' | 'PATCH' | 'POST', url: string, role: Role, payload: object) =>
  server.app.inject({ method, url, headers: as(role), payload })
const keys = (header: unknown): string[] => String(header).split(' ')

describe('ETag and 304', () => {
  it('answers a GET with its ETag, then 304 without a body to a matching If-None-Match', async () => {
    const first = await get('/actors/1')
    expect(first.statusCode).toBe(200)
    expect(first.headers).toMatchObject({
      etag: '"1"',
      'cache-control': 'private, no-cache',
      vary: 'Authorization',
      'x-cache': 'miss',
    })
    expect(first.json()).toMatchObject({ id: '1', version: 1 })
    const again = await get('/actors/1')
    expect(again.headers['x-cache']).toBe('hit')
    expect(again.body).toBe(first.body)
    const revalidated = await get('/actors/1', { 'if-none-match': '"1"' })
    expect(revalidated.statusCode).toBe(304)
    expect(revalidated.body).toBe('')
    expect(revalidated.headers).toMatchObject({ etag: '"1"', 'x-cache': 'hit' })
    expect(revalidated.headers['surrogate-key']).toBe(first.headers['surrogate-key'])
  })

  it('gives every cached route a validator; derived stats a weak one from their sources', async () => {
    for (const url of ['/actors/2/equipment', '/config', '/actors/2/derived']) {
      const res = await get(url)
      expect(res.statusCode).toBe(200)
      const etag = String(res.headers.etag)
      expect(etag).toMatch(url.endsWith('derived') ? /^W\/"\d+\.\d+\.\d+"$/ : /^"\d+"$/)
      expect((await get(url, { 'if-none-match': etag })).statusCode).toBe(304)
    }
    const derived = await get('/actors/2/derived')
    const { sources } = derived.json().derivedStats
    expect(derived.headers.etag).toBe(
      `W/"${sources.primaryCore}.${sources.flexibleStats}.${sources.config}"`,
    )
    // the copy kept for later reads did not compute them
    expect(derived.json().computed).toBe(false)
  })

  it('answers HEAD like GET, without a body', async () => {
    const res = await server.app.inject({ method: 'HEAD', url: '/actors/1', headers: as('player') })
    expect(res.statusCode).toBe(200)
    expect(res.headers.etag).toBe('"1"')
    expect(res.body).toBe('')
  })

  it('takes a bad If-None-Match as no match, and a list or * by weak comparison', async () => {
    const bad = ['garbage', '"', '"1', 'W/', '""', ',,,', '"2"', `"${'9'.repeat(4000)}"`, '\t']
    for (const header of bad) {
      const res = await get('/actors/1', { 'if-none-match': header })
      expect(res.statusCode, header).toBe(200)
      expect(res.json().id).toBe('1')
    }
    for (const header of ['*', 'W/"1"', '"x", "1"', 'junk "1" junk', '"0",W/"1"']) {
      expect((await get('/actors/1', { 'if-none-match': header })).statusCode, header).toBe(304)
    }
  })

  it('keeps errors out of the cache: a 404 stays a 404 until the actor exists', async () => {
    expect((await get('/actors/new-7')).statusCode).toBe(404)
    const res = await get('/actors/new-7', { 'if-none-match': '*' })
    expect(res.statusCode).toBe(404)
    expect(res.headers['x-cache']).toBeUndefined()
    const primaryCore = {
      name: 'N',
      level: 1,
      hp: 1,
      mp: 1,
      strength: 1,
      agility: 1,
      intelligence: 1,
    }
    expect((await write('PUT', '/actors/new-7', 'gm', { primaryCore })).statusCode).toBe(200)
    expect((await get('/actors/new-7')).json()).toMatchObject({ version: 1, primaryCore })
  })
})

describe('Surrogate-Key', () => {
  it('lists the tags of the entities a response is built from, then their namespaces', async () => {
    expect(keys((await get('/actors/3')).headers['surrogate-key'])).toEqual([
      'actor:3',
      'primary_core:actor:3',
      'primary_core',
    ])
    expect(keys((await get('/actors/3/equipment')).headers['surrogate-key'])).toEqual([
      'actor:3',
      'flexible_stats:actor:3',
      'flexible_stats',
    ])
    expect(keys((await get('/actors/3/derived')).headers['surrogate-key'])).toEqual([
      'actor:3',
      'primary_core:actor:3',
      'flexible_stats:actor:3',
      'derived_stats:actor:3',
      'primary_core',
      'flexible_stats',
      'derived_stats',
      'config:game',
      'config',
    ])
    expect(keys((await get('/config')).headers['surrogate-key'])).toEqual(['config:game', 'config'])
  })
})

describe('purges', () => {
  it('a write purges its responses: the next GET has the new body and a new ETag', async () => {
    const before = await get('/actors/4')
    const derived = await get('/actors/4/derived')
    expect((await get('/actors/4')).headers['x-cache']).toBe('hit')
    const patched = await write('PATCH', '/actors/4', 'gm', { primaryCore: { hp: 4321 } })
    expect(patched.statusCode).toBe(200)
    const after = await get('/actors/4', { 'if-none-match': String(before.headers.etag) })
    expect(after.statusCode).toBe(200)
    expect(after.headers['x-cache']).toBe('miss')
    expect(after.headers.etag).toBe(`"${patched.json().version}"`)
    expect(after.headers.etag).not.toBe(before.headers.etag)
    expect(after.json().primaryCore.hp).toBe(4321)
    const recomputed = await get('/actors/4/derived', {
      'if-none-match': String(derived.headers.etag),
    })
    expect(recomputed.statusCode).toBe(200)
    expect(recomputed.json().computed).toBe(true)
    expect(recomputed.headers.etag).not.toBe(derived.headers.etag)
    // equipment does not show the primary core: its copy stays
    await get('/actors/4/equipment')
    await write('PATCH', '/actors/4', 'gm', { primaryCore: { hp: 1234 } })
    expect((await get('/actors/4/equipment')).headers['x-cache']).toBe('hit')
  })

  it('equipment and config changes purge what is built from them', async () => {
    await get('/actors/5/equipment')
    await get('/actors/5/derived')
    const gear = { equipment: { ring: { item: 'ring', modifiers: { attack: 7 } } }, buffs: [] }
    expect(
      (await write('PUT', '/actors/5/equipment', 'player', { flexibleStats: gear })).statusCode,
    ).toBe(200)
    const equipment = await get('/actors/5/equipment')
    expect(equipment.headers['x-cache']).toBe('miss')
    expect(equipment.json().flexibleStats).toEqual(gear)
    expect((await get('/actors/5/derived')).json().computed).toBe(true)
    const config = await get('/config')
    await get('/actors/5/derived')
    const changed = await write('PATCH', '/config', 'admin', { config: { critCap: 0.45 } })
    expect(changed.statusCode).toBe(200)
    const fresh = await get('/config', { 'if-none-match': String(config.headers.etag) })
    expect(fresh.statusCode).toBe(200)
    expect(fresh.json().config.critCap).toBe(0.45)
    const derived = await get('/actors/5/derived')
    expect(derived.headers['x-cache']).toBe('miss')
    expect(derived.json().derivedStats.sources.config).toBe(changed.json().version)
  })

  it('the invalidation routes purge by tag, by key and by event', async () => {
    const cases: { target: object; role: Role; url: string }[] = [
      { target: { tags: ['actor:6'] }, role: 'admin', url: '/actors/6/equipment' },
      { target: { namespace: 'primary_core', keys: ['actor:6'] }, role: 'gm', url: '/actors/6' },
      {
        target: { namespace: 'flexible_stats', patterns: ['actor:6*'] },
        role: 'gm',
        url: '/actors/6/equipment',
      },
      { target: { namespace: 'config', all: true }, role: 'admin', url: '/config' },
    ]
    for (const { target, role, url } of cases) {
      await get(url)
      expect((await get(url)).headers['x-cache']).toBe('hit')
      expect((await write('POST', '/invalidations', role, target)).statusCode).toBe(204)
      expect((await get(url)).headers['x-cache'], JSON.stringify(target)).toBe('miss')
    }
    await get('/actors/6/derived')
    const event = await write('POST', '/invalidations/events/stat_updated', 'gm', {
      params: { entityId: 'actor:6' },
    })
    expect(event.statusCode).toBe(204)
    expect(purges.at(-1)?.tags).toEqual(['derived_stats:actor:6'])
    expect((await get('/actors/6/derived')).headers['x-cache']).toBe('miss')
  })

  it('calls the purge hook with the tags of each write, not for a refused one', async () => {
    const before = purges.length
    await write('PATCH', '/actors/7', 'gm', { primaryCore: { hp: 77 } })
    expect(purges.slice(before)).toEqual([
      { tags: ['primary_core:actor:7'], method: 'PATCH', url: '/actors/7' },
    ])
    const stale = await server.app.inject({
      method: 'PATCH',
      url: '/actors/7',
      headers: { ...as('gm'), 'if-match': '"1"' },
      payload: { primaryCore: { hp: 1 } },
    })
    expect(stale.statusCode).toBe(409)
    const denied = await write('PATCH', '/actors/7', 'player', { primaryCore: { hp: 1 } })
    expect(denied.statusCode).toBe(403)
    await server.app.inject({ method: 'DELETE', url: '/actors/8', headers: as('gm') })
    expect(purges.slice(before + 1)).toEqual([
      { tags: ['actor:8'], method: 'DELETE', url: '/actors/8' },
    ])
    expect((await get('/actors/8')).statusCode).toBe(404)
  })

  it('answers the write when the purge hook throws, and still purged its own cache', async () => {
    await get('/actors/20')
    const res = await write('PATCH', '/actors/20', 'gm', { primaryCore: { hp: 2020 } })
    expect(res.statusCode).toBe(200)
    expect(purges.at(-1)?.tags).toEqual(['primary_core:actor:20'])
    expect((await get('/actors/20')).json().primaryCore.hp).toBe(2020)
  })

  it('never answers a read from before a write that was acknowledged', async () => {
    for (let i = 0; i < 20; i++) {
      // a read under way while the write happens may see either version; the next may not
      const racing = get('/actors/9')
      const patched = await write('PATCH', '/actors/9', 'gm', { primaryCore: { hp: 900 + i } })
      expect(patched.statusCode).toBe(200)
      const after = await get('/actors/9')
      expect(after.json()).toMatchObject({
        version: patched.json().version,
        primaryCore: { hp: 900 + i },
      })
      expect((await racing).statusCode).toBe(200)
    }
  })
})

describe('the caching switch', () => {
  it('off, responses bypass the response cache, with validators still', async () => {
    const admin = as('admin')
    const turn = (enabled: boolean) =>
      server.app.inject({
        method: 'PUT',
        url: '/admin/caching',
        headers: admin,
        payload: { enabled },
      })
    await get('/actors/10')
    expect((await get('/actors/10')).headers['x-cache']).toBe('hit')
    expect((await turn(false)).statusCode).toBe(200)
    try {
      const off = await get('/actors/10')
      expect(off.headers['x-cache']).toBe('bypass')
      expect(off.headers.etag).toBe('"1"')
      expect((await get('/actors/10', { 'if-none-match': '"1"' })).statusCode).toBe(304)
      // writes still purge while it is off: nothing stale when it is back on
      await write('PATCH', '/actors/10', 'gm', { primaryCore: { hp: 1010 } })
    } finally {
      await turn(true)
    }
    const on = await get('/actors/10')
    expect(on.headers['x-cache']).toBe('miss')
    expect(on.json().primaryCore.hp).toBe(1010)
  })
})

describe('copies per role', () => {
  it('keeps one copy per set of roles', async () => {
    await get('/actors/11', {}, 'player')
    expect((await get('/actors/11', {}, 'player')).headers['x-cache']).toBe('hit')
    expect((await get('/actors/11', {}, 'gm')).headers['x-cache']).toBe('miss')
    expect((await get('/actors/11', {}, 'gm')).headers['x-cache']).toBe('hit')
  })
})
