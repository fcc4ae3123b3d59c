import { createMemCache } from '@actor-cache/memcache'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { describe, expect, it } from 'vitest'
import { type AuditEvent, guardCache, maskValue, redactPaths, runAs } from '../src/index.js'

const policy = {
  roles: {
    support: [{ namespaces: 'actors', operations: ['read' as const] }],
    server: [{ namespaces: '*', operations: '*' as const }],
  },
}
const sensitive = { actors: ['email', 'profile.phone'], tokens: 'value' } as const

async function withCache<T>(fn: (c: TieredCache) => Promise<T>) {
  const l1 = createMemCache()
  const cache = createTieredCache({ l1 })
  try {
    return await fn(cache)
  } finally {
    await cache.close()
    await l1.close()
  }
}

describe('access audit', () => {
  it('records who did what, where, when and how it ended, with sensitive fields masked', async () => {
    const events: AuditEvent[] = []
    await withCache(async (cache) => {
      const g = guardCache(cache, {
        policy,
        audit: { sink: (e) => events.push(e), includeValues: true, sensitive },
      })
      const server = g.as({ id: 'svc-1', roles: ['server'] }).namespace('actors')
      await server.set('actor:1', {
        name: 'Ann',
        email: 'ann@example.com',
        profile: { phone: '1', level: 2 },
      })
      await runAs({ id: 'agent-7', roles: ['support'] }, async () => {
        await g.namespace('actors').get('actor:1')
        await expect(g.namespace('actors').set('actor:1', {})).rejects.toMatchObject({
          code: 'E_FORBIDDEN',
        })
      })
      await expect(server.set('actor:2', () => 1)).rejects.toMatchObject({
        code: 'E_SERIALIZATION',
      })
    })
    expect(
      events.map((e) => [e.principal, e.operation, e.method, e.namespace, e.outcome, e.code]),
    ).toEqual([
      ['svc-1', 'write', 'set', 'actors', 'ok', undefined],
      ['agent-7', 'read', 'get', 'actors', 'ok', undefined],
      ['agent-7', 'write', 'set', 'actors', 'denied', 'E_FORBIDDEN'],
      ['svc-1', 'write', 'set', 'actors', 'error', 'E_SERIALIZATION'],
    ])
    expect(events[0]?.keys).toEqual(['actor:1'])
    expect(events[0]?.roles).toEqual(['server'])
    expect(typeof events[0]?.time).toBe('number')
    expect(events[0]?.durationMs).toBeGreaterThanOrEqual(0)
    expect(events[0]?.value).toEqual({
      name: 'Ann',
      email: '[REDACTED]',
      profile: { phone: '[REDACTED]', level: 2 },
    })
    expect(JSON.stringify(events)).not.toContain('ann@example.com')
  })

  it('samples per operation; refusals have their own rate', async () => {
    const events: AuditEvent[] = []
    await withCache(async (cache) => {
      const g = guardCache(cache, {
        policy,
        audit: { sink: (e) => events.push(e), sample: { read: 0, write: 1, refused: 0 } },
      })
      const server = g.as({ id: 's', roles: ['server'] }).namespace('actors')
      await server.set('k', 1)
      for (let i = 0; i < 50; i++) await server.get('k')
      await expect(
        g
          .as({ id: 'x', roles: ['support'] })
          .namespace('actors')
          .delete('k'),
      ).rejects.toThrow()
    })
    expect(events.map((e) => e.method)).toEqual(['set'])

    const half: AuditEvent[] = []
    let n = 0
    await withCache(async (cache) => {
      const g = guardCache(cache, {
        policy,
        audit: { sink: (e) => half.push(e), sample: { read: 0.5 }, random: () => (n++ % 2) / 2 },
      })
      const server = g.as({ id: 's', roles: ['server'] }).namespace('actors')
      for (let i = 0; i < 10; i++) await server.get('k')
    })
    expect(half.length).toBe(5)
  })

  it('logs to a pino-compatible logger, refusals as warnings, with hashed keys', async () => {
    const lines: [string, object, string | undefined][] = []
    const logger = {
      info: (o: object, m?: string) => lines.push(['info', o, m]),
      warn: (o: object, m?: string) => lines.push(['warn', o, m]),
    }
    await withCache(async (cache) => {
      const g = guardCache(cache, { policy, audit: { sink: logger, keys: 'hash' } })
      await g
        .as({ id: 's', roles: ['server'] })
        .namespace('actors')
        .get('actor:secret-name')
      await expect(g.as({ id: 'x', roles: [] }).namespace('actors').get('k')).rejects.toThrow()
    })
    expect(lines.map(([level]) => level)).toEqual(['info', 'warn'])
    const first = (lines[0] as [string, { audit: AuditEvent }, string | undefined])[1].audit
    expect(first.keys?.[0]).toMatch(/^[0-9a-f]{16}$/)
    expect(JSON.stringify(lines)).not.toContain('secret-name')
  })

  it('a failing sink never fails the call', async () => {
    await withCache(async (cache) => {
      const g = guardCache(cache, {
        policy,
        audit: {
          sink: () => {
            throw new Error('disk full')
          },
        },
      })
      const ns = g.as({ id: 's', roles: ['server'] }).namespace('actors')
      await ns.set('k', 1)
      expect(await ns.get('k')).toBe(1)
    })
  })

  it('refuses bad audit options with typed errors', async () => {
    await withCache(async (cache) => {
      for (const audit of [
        { sink: 'stdout' },
        { sink: () => {}, sample: { read: 2 } },
        { sink: () => {}, sample: { fly: 1 } },
        { sink: () => {}, keys: 'md5' },
      ]) {
        expect(() => guardCache(cache, { policy, audit: audit as never })).toThrow(
          expect.objectContaining({ code: 'E_INVALID_OPTION' }),
        )
      }
    })
  })
})

describe('log masking', () => {
  it('generates pino redact paths from the sensitive-field config', () => {
    expect(redactPaths(sensitive)).toEqual([
      'value.email',
      'value.profile.phone',
      'audit.value.email',
      'audit.value.profile.phone',
      '*.value.email',
      '*.value.profile.phone',
      'value',
      'audit.value',
      '*.value',
    ])
    expect(redactPaths({ a: ['odd-name'] }, { prefixes: ['v'] })).toEqual(['v["odd-name"]'])
    expect(redactPaths({ a: ['say "hi"'] }, { prefixes: ['v'] })).toEqual([`v['say "hi"']`])
  })

  it('refuses field names that pino redact paths cannot carry', () => {
    for (const name of ['x[0]', 'a]b', 'a,b', `"it's"`]) {
      expect(() => redactPaths({ actors: [`profile.${name}`] })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION', option: 'fields.actors' }),
      )
    }
  })

  it('masks values without changing them', () => {
    const value = { name: 'Ann', email: 'a@b', profile: { phone: '1' } }
    expect(maskValue(sensitive, 'actors', value)).toEqual({
      name: 'Ann',
      email: '[REDACTED]',
      profile: { phone: '[REDACTED]' },
    })
    expect(value.email).toBe('a@b')
    expect(maskValue(sensitive, 'tokens', 'tok')).toBe('[REDACTED]')
    expect(maskValue(sensitive, 'zones', value)).toBe(value)
    expect(maskValue(sensitive, 'actors', 'not an object')).toBe('not an object')
  })
})
