import type { CacheTier } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createTieredCache } from '../src/index.js'
import { dropPrefix, redis, uid } from './helpers.js'

let client: AnyRedisClient
const prefix = `scr${uid()}`
beforeAll(async () => { client = await redis() })
afterAll(async () => { await dropPrefix(client, prefix); await client.close() })

it('a fill taken back deletes the newer write that landed after it', async () => {
  const inner = createRedisStore({ client, prefix })
  let gate: Promise<void> | undefined
  let open!: () => void
  let landed!: () => void
  const casLanded = new Promise<void>((r) => { landed = r })
  const l2 = new Proxy(inner, {
    get(t, p) {
      if (p === 'namespace') {
        return (name: string, o: unknown) => {
          const s = (t as any).namespace(name, o)
          return new Proxy(s, {
            get(st, sp) {
              if (sp === 'set') {
                return async (...a: any[]) => {
                  const r = await st.set(...a)
                  if (a[2]?.expectedVersion !== undefined && gate) { landed(); await gate }
                  return r
                }
              }
              const v = Reflect.get(st, sp)
              return typeof v === 'function' ? v.bind(st) : v
            },
          })
        }
      }
      const v = Reflect.get(t, p)
      return typeof v === 'function' ? v.bind(t) : v
    },
  }) as unknown as CacheTier
  const c = createTieredCache({
    l1: createMemCache(), l2,
    namespaces: { n: { record: false, loader: async () => 'loaded' } },
  })
  const t = c.namespace<string>('n')
  gate = new Promise((r) => { open = r })
  const read = t.get('k')
  await casLanded // the load's compare-and-set is stored in L2, its answer not back yet
  const w = await t.set('k', 'written')
  open()
  console.log('read', await read, 'write', w)
  const stored = await inner.namespace('n').get('k')
  console.log('L2 after', stored)
  const other = createTieredCache({ l1: createMemCache(), l2: inner, namespaces: { n: { record: false, loader: async () => 'loaded' } } })
  console.log('other instance reads', await other.namespace<string>('n').get('k'))
  expect(stored?.value).toBe('written')
  await c.close(); await other.close()
})
