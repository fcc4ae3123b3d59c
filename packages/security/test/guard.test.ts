import { ForbiddenError, parseCacheConfigYaml } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createTieredCache, type TieredCache, type TieredNamespace } from '@actor-cache/strategies'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type AccessPolicy,
  currentPrincipal,
  type GuardedCache,
  guardCache,
  OPERATIONS,
  type Operation,
  type Principal,
  runAs,
} from '../src/index.js'

const policy: AccessPolicy = {
  roles: {
    reader: [{ namespaces: 'actor_*', operations: ['read'] }],
    writer: [
      { namespaces: ['actor_*'], operations: ['read', 'write'] },
      { namespaces: 'actor_inventory', operations: ['delete'] },
    ],
    ops: [{ namespaces: '*', operations: ['invalidate'] }],
    zone_admin: [{ namespaces: 'zone_?????*', operations: '*' }],
    admin: [{ namespaces: '*', operations: '*' }],
    guest: [],
  },
}

const NAMESPACES = ['actor_core', 'actor_inventory', 'zone_summary'] as const
type Ns = (typeof NAMESPACES)[number]

/** What each role may do, written out by hand (not computed from the policy). */
const EXPECTED: Record<string, Record<Ns, readonly Operation[]>> = {
  reader: { actor_core: ['read'], actor_inventory: ['read'], zone_summary: [] },
  writer: {
    actor_core: ['read', 'write'],
    actor_inventory: ['read', 'write', 'delete'],
    zone_summary: [],
  },
  ops: {
    actor_core: ['invalidate'],
    actor_inventory: ['invalidate'],
    zone_summary: ['invalidate'],
  },
  zone_admin: { actor_core: [], actor_inventory: [], zone_summary: [...OPERATIONS] },
  admin: {
    actor_core: [...OPERATIONS],
    actor_inventory: [...OPERATIONS],
    zone_summary: [...OPERATIONS],
  },
  guest: { actor_core: [], actor_inventory: [], zone_summary: [] },
}

let l1: ReturnType<typeof createMemCache>
let cache: TieredCache
let guarded: GuardedCache<TieredCache>
const root: Principal = { id: 'root', roles: ['admin'] }

beforeEach(async () => {
  l1 = createMemCache()
  cache = createTieredCache({ l1 })
  guarded = guardCache(cache, { policy })
  for (const ns of NAMESPACES) await guarded.as(root).namespace(ns).set('k', { v: ns })
})
afterEach(async () => {
  await cache.close()
  await l1.close()
})

/** Runs `op` on `ns` as the namespace's guarded view gives it; resolves to the error, if any. */
async function attempt(ns: TieredNamespace, op: Operation): Promise<unknown> {
  try {
    switch (op) {
      case 'read':
        await ns.get('k') // an L1 hit: the value was written above
        break
      case 'write':
        await ns.set('k', { v: 'changed' })
        break
      case 'delete':
        await ns.delete('k')
        break
      case 'invalidate':
        await ns.invalidate('k')
        break
      case 'admin':
        ns.stats()
        break
    }
    return undefined
  } catch (error) {
    return error
  }
}

describe('the role × operation × namespace matrix', () => {
  const cases = Object.keys(EXPECTED).flatMap((role) =>
    NAMESPACES.flatMap((ns) => OPERATIONS.map((op) => [role, ns, op] as const)),
  )

  for (const via of ['request context', 'bound principal'] as const) {
    it(`${cases.length} cases through the ${via}: allowed exactly as granted, else E_FORBIDDEN naming role, operation, namespace`, async () => {
      let checked = 0
      for (const [role, ns, op] of cases) {
        const principal = { id: `user-${role}`, roles: [role] }
        const hitsBefore = cache.namespace<unknown>(ns).stats().l1Hits
        const error =
          via === 'bound principal'
            ? await attempt(guarded.as(principal).namespace(ns), op)
            : await runAs(principal, () => attempt(guarded.namespace(ns), op))
        const allowed = (EXPECTED[role]?.[ns] ?? []).includes(op)
        if (allowed) {
          expect(error, `${role} ${op} ${ns}`).toBeUndefined()
        } else {
          expect(error, `${role} ${op} ${ns}`).toBeInstanceOf(ForbiddenError)
          const f = error as ForbiddenError
          expect(f.code).toBe('E_FORBIDDEN')
          expect(f.operation).toBe(op)
          expect(f.namespace).toBe(ns)
          expect(f.roles).toEqual([role])
          expect(f.principal).toBe(`user-${role}`)
          expect(f.message).toContain(`"${role}"`)
          expect(f.message).toContain(op)
          expect(f.message).toContain(ns)
          // refused before the cache: not even an L1 hit was counted
          expect(cache.namespace<unknown>(ns).stats().l1Hits).toBe(hitsBefore)
        }
        // restore the entry for the next case
        await guarded.as(root).namespace(ns).set('k', { v: ns })
        checked++
      }
      expect(checked).toBe(90)
    })
  }

  it('several roles add up; an unknown role grants nothing', async () => {
    const both = guarded
      .as({ id: 'u', roles: ['reader', 'ops', 'nonexistent'] })
      .namespace('actor_core')
    expect(await both.get('k')).toEqual({ v: 'actor_core' })
    await both.invalidate('k')
    await expect(both.set('k', 1)).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
      operation: 'write',
    })
  })
})

describe('the guard', () => {
  it("passes a delete's options on to the cache (an expected version is not dropped)", async () => {
    const ns = guarded.as(root).namespace('actor_core')
    // an untracked namespace refuses an expected version on delete: the option reached it
    await expect(ns.delete('k', { expectedVersion: 1 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'expectedVersion',
    })
    expect(await ns.get('k')).toEqual({ v: 'actor_core' })
    expect(await ns.delete('k', {})).toBe(true)
  })

  it('with no principal in the request context, refuses everything', async () => {
    expect(currentPrincipal()).toBeUndefined()
    await expect(guarded.namespace('actor_core').get('k')).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
      principal: '(none)',
    })
    await expect(guarded.invalidate({ tags: ['t'] })).rejects.toMatchObject({ code: 'E_FORBIDDEN' })
  })

  it('the request context follows awaits and callbacks, and ends with the request', async () => {
    const ns = guarded.namespace('actor_core')
    const reader = { id: 'r', roles: ['reader'] }
    await runAs(reader, async () => {
      await new Promise((r) => setTimeout(r, 1))
      expect(await ns.get('k')).toEqual({ v: 'actor_core' })
      await expect(ns.set('k', 1)).rejects.toMatchObject({ code: 'E_FORBIDDEN' })
    })
    await expect(ns.get('k')).rejects.toMatchObject({ code: 'E_FORBIDDEN' })
    // a principal mutated after runAs cannot gain roles: the guard holds a frozen copy
    const roles = ['guest']
    await runAs({ id: 'm', roles }, async () => {
      roles.push('admin')
      await expect(ns.get('k')).rejects.toMatchObject({ code: 'E_FORBIDDEN' })
    })
  })

  it('getOrSet and getMany with a caller-supplied loader need write too (a reader cannot plant values)', async () => {
    const reader = guarded.as({ id: 'r', roles: ['reader'] }).namespace<number>('actor_core')
    const writer = guarded.as({ id: 'w', roles: ['writer'] }).namespace<number>('actor_core')
    await expect(reader.getOrSet('new', async () => 666)).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
      operation: 'write',
    })
    await expect(reader.getMany(['new'], async () => [666])).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
      operation: 'write',
    })
    expect(await reader.get('new')).toBeUndefined()
    expect(await writer.getOrSet('new', async () => 7)).toBe(7)
    expect(await reader.getMany(['new', 'none'])).toEqual([7, undefined])
  })

  it('tag and namespace-less invalidations need a grant on every namespace', async () => {
    const writer = guarded.as({ id: 'w', roles: ['writer'] })
    await expect(writer.invalidate({ tags: ['zone:1'] })).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
      operation: 'invalidate',
    })
    await expect(
      writer.namespace('actor_core').invalidate({ tags: ['zone:1'] }),
    ).rejects.toMatchObject({ code: 'E_FORBIDDEN' })
    const ops = guarded.as({ id: 'o', roles: ['ops'] })
    await ops.invalidate({ tags: ['zone:1'] })
    await ops.invalidate({ namespace: 'actor_core', keys: ['k'] })
    await expect(
      guarded
        .as({ id: 'z', roles: ['zone_admin'] })
        .invalidate({ namespace: 'actor_core', all: true }),
    ).rejects.toMatchObject({ code: 'E_FORBIDDEN', namespace: 'actor_core' })
  })

  it('invalidateByEvent needs invalidate on every namespace its rules name', async () => {
    const config = parseCacheConfigYaml(
      [
        'invalidation:',
        '  events:',
        '    zone_changed:',
        '      - namespace: zone_summary',
        '        keys: ["{zone}"]',
        '    actor_moved:',
        '      - namespace: zone_summary',
        '        keys: ["{zone}"]',
        '      - namespace: actor_core',
        '        keys: ["{actor}"]',
        '    season_reset:',
        '      - tags: [season]',
      ].join('\n'),
    )
    const c = createTieredCache({ l1, config })
    const g = guardCache(c, { policy, config })
    const zone = g.as({ id: 'z', roles: ['zone_admin'] })
    await zone.invalidateByEvent('zone_changed', { zone: 'z1' })
    await expect(
      zone.invalidateByEvent('actor_moved', { zone: 'z1', actor: 'a' }),
    ).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
      namespace: 'actor_core',
    })
    await expect(zone.invalidateByEvent('season_reset')).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
    })
    await g.as({ id: 'o', roles: ['ops'] }).invalidateByEvent('season_reset')
    await c.close()
  })

  it('cache-wide admin calls and namespaces set up with a policy need admin', async () => {
    const writer = guarded.as({ id: 'w', roles: ['writer'] })
    expect(() => writer.stats()).toThrow(ForbiddenError)
    await expect(writer.flush()).rejects.toMatchObject({ code: 'E_FORBIDDEN', operation: 'admin' })
    expect(() => writer.namespace('actor_new', { ttl: 1000 })).toThrow(
      expect.objectContaining({ code: 'E_FORBIDDEN', operation: 'admin', namespace: 'actor_new' }),
    )
    expect(guarded.as(root).namespace('actor_new', { ttl: 1000 }).name).toBe('actor_new')
    expect(guarded.as(root).stats()).toHaveProperty('namespaces')
    await expect(guarded.close()).rejects.toMatchObject({ code: 'E_FORBIDDEN' })
  })

  it('refuses malformed policies and principals with typed errors', () => {
    const bad: unknown[] = [
      undefined,
      { roles: null },
      { roles: { r: {} } },
      { roles: { r: [{ namespaces: [], operations: ['read'] }] } },
      { roles: { r: [{ namespaces: 'a', operations: ['fly'] }] } },
      { roles: { r: [{ namespaces: 'a[', operations: ['read'] }] } },
      { roles: { 'bad role': [] } },
    ]
    for (const p of bad) {
      expect(() => guardCache(cache, { policy: p as AccessPolicy })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION' }),
      )
    }
    for (const p of [
      null,
      {},
      { id: '', roles: [] },
      { id: 'x', roles: 'admin' },
      { id: 'x', roles: [1] },
    ]) {
      expect(() => guarded.as(p as unknown as Principal)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION' }),
      )
      expect(() => runAs(p as unknown as Principal, () => 1)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION' }),
      )
    }
  })
})
