import { isActorCacheError, MAX_KEY_LENGTH } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { createRedisStore } from '@actor-cache/redis'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createKeyring,
  createRateLimiter,
  encryptTier,
  type GuardedCache,
  guardCache,
  type Principal,
  runAs,
} from '../src/index.js'
import {
  asStoreClient,
  assertReplayable,
  CountingProxy,
  commandCounts,
  DATABASE_URL,
  postgres,
  privateRedis,
  type Redis,
  type RedisServer,
  redis,
  type TestDb,
  testKey,
} from './helpers.js'

const policy = {
  roles: {
    server: [{ namespaces: '*', operations: '*' as const }],
    reader: [{ namespaces: 'actors', operations: ['read' as const] }],
  },
}
const server: Principal = { id: 'svc', roles: ['server'] }

class Weapon {
  damage = 3
}
const cyclic = (): object => {
  const o: Record<string, unknown> = {}
  o.self = o
  return o
}

const badKey = fc.oneof(
  fc.constant(''),
  fc.string({ minLength: 1, maxLength: 5 }).map((s) => `${s}\u0000`),
  fc.string({ minLength: 1, maxLength: 5 }).map((s) => `k\u001b${s}`),
  fc.constant('x'.repeat(MAX_KEY_LENGTH + 1)),
  fc.constant('\ud800lone'),
  fc.integer(),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant({}),
)
const badValue = fc.oneof(
  fc.constant(() => 1),
  fc.constant(Symbol('s')),
  fc.constant(new Weapon()),
  fc.constant(Buffer.from('x')),
  fc.constant({ nested: { fn: () => 1 } }),
  fc.constant(null).map(cyclic),
)
/** Values a field-encrypted namespace refuses: they have no fields to encrypt. */
const notAnObject = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.nat()))
const badPrincipal = fc.oneof(
  fc.constant(null),
  fc.constant({}),
  fc.record({ id: fc.constant(''), roles: fc.constant([]) }),
  fc.record({ id: fc.string({ minLength: 1 }), roles: fc.constant('server') }),
  fc.record({ id: fc.string({ minLength: 1 }), roles: fc.array(fc.integer(), { minLength: 1 }) }),
  fc.record({ id: fc.constant('x'.repeat(300)), roles: fc.constant([]) }),
)
/** Principals that are well formed but may not do what they ask. */
const weakPrincipal = fc.oneof(
  fc.record({ id: fc.string({ minLength: 1, maxLength: 8 }), roles: fc.constant([] as string[]) }),
  fc.record({ id: fc.string({ minLength: 1, maxLength: 8 }), roles: fc.constant(['reader']) }),
  fc.record({ id: fc.string({ minLength: 1, maxLength: 8 }), roles: fc.constant(['unknown']) }),
)
const badPolicy = fc.oneof(
  fc.constant(undefined),
  fc.constant({ roles: [] }),
  fc.record({ roles: fc.record({ r: fc.constant([{ namespaces: 'a', operations: ['fly'] }]) }) }),
  fc.record({ roles: fc.record({ r: fc.constant([{ namespaces: [], operations: '*' }]) }) }),
  fc.record({ roles: fc.record({ r: fc.constant([{ namespaces: '[', operations: '*' }]) }) }),
  fc.record({ roles: fc.record({ r: fc.constant({ namespaces: 'a', operations: '*' }) }) }),
  fc.constant({ roles: { 'a b': [] } }),
)
const badConfig = fc.oneof(
  // encryption
  fc.constant(() => createKeyring({ keys: [{ id: 'k', key: new Uint8Array(16) }] })),
  fc.constant(() => createKeyring({ keys: [{ id: 'k', key: 'not base64!' }] })),
  fc.constant(() => createKeyring({ keys: [{ id: 'k', key: testKey(1) }], primary: 'z' })),
  fc.constant(() => encryptTier(createMemCache(), { keyring: {} as never, namespaces: {} })),
  fc.constant(() =>
    encryptTier(createMemCache(), {
      keyring: createKeyring({ keys: [{ id: 'k', key: testKey(1) }] }),
      namespaces: { actors: ['__proto__'] },
    }),
  ),
  fc.constant(() =>
    encryptTier(createMemCache(), {
      keyring: createKeyring({ keys: [{ id: 'k', key: testKey(1) }] }),
      namespaces: { 'bad ns': 'value' },
    }),
  ),
  // rate limits and audit
  fc.integer({ max: 0 }).map((points) => () => createRateLimiter({ points, duration: 1 })),
  fc
    .double({ noNaN: false })
    .filter((d) => !Number.isSafeInteger(d) || d < 1)
    .map((duration) => () => createRateLimiter({ points: 1, duration })),
  fc.double({ min: 1.01, max: 1e6 }).map(
    (rate) => () =>
      guardCache(createTieredCache(), {
        policy,
        audit: { sink: () => {}, sample: { read: rate } },
      }),
  ),
)

type KeyOp = 'get' | 'set' | 'delete' | 'getMany' | 'invalidate'
type DenyOp = 'set' | 'delete' | 'clear' | 'tags'
type Case =
  | { kind: 'key'; op: KeyOp; ns: string; key: unknown }
  | { kind: 'value'; ns: string; value: unknown }
  | { kind: 'principal'; principal: unknown; via: 'as' | 'runAs' }
  | { kind: 'forbidden'; principal: Principal; op: DenyOp }
  | { kind: 'policy'; policy: unknown }
  | { kind: 'config'; make: () => unknown }

const ns = fc.constantFrom('actors', 'vault', 'public')
const anyCase: fc.Arbitrary<Case> = fc.oneof(
  fc.record({
    kind: fc.constant('key' as const),
    op: fc.constantFrom<KeyOp>('get', 'set', 'delete', 'getMany', 'invalidate'),
    ns,
    key: badKey,
  }),
  fc.record({ kind: fc.constant('value' as const), ns, value: badValue }),
  fc.record({ kind: fc.constant('value' as const), ns: fc.constant('actors'), value: notAnObject }),
  fc.record({
    kind: fc.constant('principal' as const),
    principal: badPrincipal,
    via: fc.constantFrom<'as' | 'runAs'>('as', 'runAs'),
  }),
  fc.record({
    kind: fc.constant('forbidden' as const),
    principal: weakPrincipal,
    op: fc.constantFrom<DenyOp>('set', 'delete', 'clear', 'tags'),
  }),
  fc.record({ kind: fc.constant('policy' as const), policy: badPolicy }),
  fc.record({ kind: fc.constant('config' as const), make: badConfig }),
)

async function run(g: GuardedCache<TieredCache>, c: Case): Promise<unknown> {
  const admin = g.as(server)
  switch (c.kind) {
    case 'key': {
      const n = admin.namespace<unknown>(c.ns)
      const key = c.key as string
      if (c.op === 'get') return n.get(key)
      if (c.op === 'set') return n.set(key, { name: 'n', email: 'e' })
      if (c.op === 'delete') return n.delete(key)
      if (c.op === 'getMany') return n.getMany([key])
      return n.invalidate([key])
    }
    case 'value':
      return admin.namespace<unknown>(c.ns).set('k', c.value)
    case 'principal':
      if (c.via === 'as')
        return g
          .as(c.principal as Principal)
          .namespace('actors')
          .get('k')
      return runAs(c.principal as Principal, () => g.namespace('actors').get('k'))
    case 'forbidden': {
      const n = g.as(c.principal).namespace<unknown>('vault')
      if (c.op === 'set') return n.set('k', 1)
      if (c.op === 'delete') return n.delete('k')
      if (c.op === 'clear') return n.clear()
      return g.as(c.principal).invalidate({ tags: ['t'] })
    }
    case 'policy':
      return guardCache(createTieredCache(), { policy: c.policy as never })
    case 'config':
      return c.make()
  }
}

describe('bad input', () => {
  let rs: RedisServer
  let client: Redis
  let counter: Redis
  let proxy: CountingProxy
  let db: TestDb
  let cache: TieredCache
  let l1: ReturnType<typeof createMemCache>
  let guards: GuardedCache<TieredCache>[]

  beforeAll(async () => {
    rs = await privateRedis()
    client = await redis(rs.url)
    counter = await redis(rs.url)
    const target = new URL(DATABASE_URL)
    proxy = new CountingProxy(target.hostname, Number(target.port || 5432))
    await proxy.start()
    const viaProxy = new URL(DATABASE_URL)
    viaProxy.host = `127.0.0.1:${proxy.port}`
    db = await postgres(viaProxy.toString())
    const keyring = createKeyring({ keys: [{ id: 'k1', key: testKey(1) }] })
    const namespaces = { actors: ['email'], vault: 'value' } as const
    l1 = createMemCache()
    cache = createTieredCache({
      l1,
      l2: encryptTier(createRedisStore({ client: asStoreClient(client), prefix: 'bad' }), {
        keyring,
        namespaces,
      }),
      l3: encryptTier(createPrismaStore({ prisma: db.prisma }), { keyring, namespaces }),
    })
    guards = [
      guardCache(cache, { policy }),
      guardCache(cache, { policy, audit: { sink: () => {} } }),
      guardCache(cache, {
        policy,
        rateLimiter: createRateLimiter({ points: 1_000_000, duration: 60, redis: client }),
      }),
    ]
    // good calls first, so connections and scripts are set up before the counting starts
    await guards[0]?.as(server).namespace('actors').set('warm', { name: 'n', email: 'e' })
    await guards[2]?.as(server).namespace('public').get('warm')
  })
  afterAll(async () => {
    await cache?.close()
    await l1?.close()
    await db?.drop()
    await client?.close()
    await counter?.close()
    await rs?.kill()
    await proxy?.close()
  })

  it('1,200 generated bad keys, values, configs, policies and principals: typed errors, 0 Redis and 0 database commands', async () => {
    const before = await commandCounts(counter)
    const bytesBefore = proxy.bytesToServer
    const seenKinds = new Set<string>()
    let cases = 0
    await assertReplayable(
      fc.asyncProperty(anyCase, fc.nat({ max: 2 }), async (c, which) => {
        cases++
        seenKinds.add(c.kind)
        let error: unknown
        try {
          // a value of the wrong shape for a field-encrypted namespace is refused by the
          // encrypting tier, after a rate limiter has counted the call: not with the limiter
          const limited = c.kind === 'value' && c.ns === 'actors' && which === 2
          await run(guards[limited ? 0 : which] as GuardedCache<TieredCache>, c)
        } catch (e) {
          error = e
        }
        if (!isActorCacheError(error)) {
          throw new Error(`not a typed error for ${c.kind}: ${String(error)}`)
        }
        if (c.kind === 'forbidden' && error.code !== 'E_FORBIDDEN') {
          throw new Error(`expected E_FORBIDDEN, got ${error.code}`)
        }
        return true
      }),
      1_200,
    )
    const after = await commandCounts(counter)
    const issued = [...after].filter(([cmd, n]) => n !== (before.get(cmd) ?? 0))
    expect(issued, 'Redis commands issued by bad input').toEqual([])
    expect(proxy.bytesToServer - bytesBefore, 'bytes sent to PostgreSQL').toBe(0)
    expect(cases).toBeGreaterThanOrEqual(1_200)
    expect([...seenKinds].sort()).toEqual(
      ['config', 'forbidden', 'key', 'policy', 'principal', 'value'].sort(),
    )
    // the counters do move: a good call is seen at both servers
    await guards[0]?.as(server).namespace('vault').set('good', 'x')
    const moved = await commandCounts(counter)
    expect([...moved].some(([cmd, n]) => n !== (after.get(cmd) ?? 0))).toBe(true)
    expect(proxy.bytesToServer).toBeGreaterThan(bytesBefore)
  })
})
