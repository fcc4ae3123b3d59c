/**
 * R15: generated bad keys, values, options, patterns and invalidation targets given to the
 * TieredCache over real Redis and PostgreSQL. Every call must fail with a typed error, and no
 * method of a Redis or PostgreSQL store may have been called for it (so no command was sent).
 */
import { isActorCacheError } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaStore } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTieredCache, type TieredCache } from '../src/index.js'
import { dropPrefix, interceptTier, postgres, redis, type TestDb, uid } from './helpers.js'

let db: TestDb
let client: AnyRedisClient
const prefix = `acbad${uid()}`
let cache: TieredCache
let calls = 0

/** A tier whose stores count every method call before passing it on. */
function counted<T extends { namespace(...a: never[]): object }>(tier: T): T {
  return interceptTier(tier, (_method, call) => {
    calls++
    return call()
  })
}

beforeAll(async () => {
  db = await postgres()
  client = await redis()
  cache = createTieredCache({
    l1: createMemCache(),
    l2: counted(createRedisStore({ client, prefix })),
    l3: counted(createPrismaStore({ prisma: db.prisma })),
    writeBehind: { autoStart: false },
    namespaces: {
      wt: { strategy: 'write_through' },
      wb: { strategy: 'write_behind' },
      wa: { strategy: 'write_around' },
      cached: { record: false, loader: () => undefined },
    },
  })
  // namespaces are created (and their stores handed out) before counting starts
  for (const n of ['wt', 'wb', 'wa', 'cached']) cache.namespace(n)
})
afterAll(async () => {
  await cache?.close()
  await dropPrefix(client, prefix)
  await client?.close()
  await db?.drop()
})

class Klass {
  x = 1
}
const cyclic: Record<string, unknown> = { a: 1 }
cyclic.self = cyclic

const badKey = fc.oneof(
  fc.constant(''),
  fc.string({ minLength: 513, maxLength: 600 }),
  fc
    .tuple(
      fc.string({ maxLength: 5 }),
      fc.integer({ min: 0, max: 0x1f }),
      fc.string({ maxLength: 5 }),
    )
    .map(([a, c, b]) => `${a}${String.fromCharCode(c)}${b}`),
  fc.constantFrom('\u007f', 'a\u0085b', '\ud800', 'x\udc00y'),
  fc.constantFrom(42, null, undefined, {}, ['k'], Symbol('k')) as fc.Arbitrary<unknown>,
)
const goodKey = fc.constantFrom('k', 'actor:1', 'k*?[x]', '__proto__', 'constructor')
const badValue = fc.constantFrom<unknown>(
  cyclic,
  new Klass(),
  () => 1,
  Symbol('v'),
  { [Symbol('s')]: 1 },
  new Uint8Array(2),
  [1, () => 2],
  { nested: { fn: () => 3 } },
  JSON.parse('{"__proto__": {"polluted": true}}'),
)
const badOptions = fc.oneof(
  fc.constantFrom<unknown>(null, -5, 0, Number.NaN, 'ttl'),
  fc.record({ ttl: fc.constantFrom<unknown>(-1, 0, Number.NaN, '10', null, -Infinity) }),
  fc.record({ version: fc.constantFrom<unknown>(0, -1, 1.5, 2 ** 53, '3', Number.NaN) }),
  fc.record({ expectedVersion: fc.constantFrom<unknown>(-1, 1.5, 2 ** 53, '0') }),
  fc.record({ tags: fc.constantFrom<unknown>('t', [''], ['a\u0000'], [1], ['x'.repeat(300)]) }),
  fc.constant<unknown>({ version: 2, expectedVersion: 1 }),
)
const namespace = fc.constantFrom('wt', 'wb', 'wa', 'cached')
const badNamespace = fc.constantFrom<unknown>(
  '',
  'has space',
  'a:b',
  '-x',
  'x'.repeat(300),
  7,
  null,
)

type Call = { what: string; run: () => Promise<unknown> }
const call: fc.Arbitrary<Call> = fc.oneof(
  fc.tuple(namespace, badKey).map(([n, k]) => ({
    what: `get(${String(k)})`,
    run: () => cache.namespace(n).get(k as string),
  })),
  fc.tuple(namespace, badKey).map(([n, k]) => ({
    what: `getMany([ok, ${String(k)}])`,
    run: () => cache.namespace(n).getMany(['ok', k as string]),
  })),
  fc.tuple(namespace, badKey).map(([n, k]) => ({
    what: `set(${String(k)})`,
    run: () => cache.namespace(n).set(k as string, 1),
  })),
  fc.tuple(namespace, badKey).map(([n, k]) => ({
    what: `delete(${String(k)})`,
    run: () => cache.namespace(n).delete(k as string),
  })),
  fc.tuple(namespace, goodKey, badValue).map(([n, k, v]) => ({
    what: `${n}.set(${k}, bad value)`,
    run: () => cache.namespace(n).set(k, v),
  })),
  fc.tuple(namespace, goodKey, badOptions).map(([n, k, o]) => ({
    what: `${n}.set(${k}, 1, ${JSON.stringify(o)})`,
    run: () => cache.namespace(n).set(k, 1, o as never),
  })),
  fc
    .tuple(
      namespace,
      goodKey,
      fc.constantFrom<unknown>(null, 'fresh', { forceFresh: 'yes' }, { forceFresh: 1 }),
    )
    .map(([n, k, o]) => ({
      what: `${n}.getOrSet(${k}, loader, ${JSON.stringify(o)})`,
      run: () => cache.namespace(n).getOrSet(k, () => 1, o as never),
    })),
  fc.tuple(namespace, badKey).map(([n, k]) => ({
    what: `getOrSet(${String(k)}, loader, { forceFresh: true })`,
    run: () => cache.namespace(n).getOrSet(k as string, () => 1, { forceFresh: true }),
  })),
  fc
    .tuple(namespace, goodKey, fc.constantFrom<unknown>(0, -5, Number.NaN, '1'))
    .map(([n, k, ttl]) => ({
      what: `setTTL(${k}, ${String(ttl)})`,
      run: () => cache.namespace(n).setTTL(k, ttl as number),
    })),
  fc.tuple(namespace, fc.constantFrom('[', 'a[b', '\\', 'x'.repeat(2000))).map(([n, p]) => ({
    what: `invalidate pattern ${p.slice(0, 20)}`,
    run: () => cache.invalidate({ namespace: n, patterns: [p] }),
  })),
  badNamespace.map((n) => ({
    what: `invalidate namespace ${String(n)}`,
    run: () => cache.invalidate({ namespace: n as string, keys: ['k'] }),
  })),
  badNamespace.map((n) => ({
    what: `namespace(${String(n)})`,
    run: async () => cache.namespace(n as string),
  })),
  fc.constantFrom<unknown>(null, 5, {}, { keys: ['k'] }, { tags: [''] }).map((t) => ({
    what: `invalidate(${JSON.stringify(t)})`,
    run: () => cache.invalidate(t as never),
  })),
)

describe('R15: bad input through the TieredCache', () => {
  it('every generated bad call fails with a typed error and sends nothing to Redis or PostgreSQL', async () => {
    let checked = 0
    await fc.assert(
      fc.asyncProperty(call, async (c) => {
        const before = calls
        let error: unknown
        try {
          await c.run()
        } catch (e) {
          error = e
        }
        if (!isActorCacheError(error)) {
          throw new Error(`${c.what}: expected a typed error, got ${String(error)}`)
        }
        expect(error.code).toMatch(/^E_INVALID_|^E_SERIALIZATION$/)
        if (calls !== before) throw new Error(`${c.what}: ${calls - before} store call(s) made`)
        checked++
      }),
      { numRuns: 2_000 },
    )
    console.log(`R15 tiered: ${checked} bad calls, 100% typed errors, 0 store calls`)
    expect(checked).toBe(2_000)
  })
})
