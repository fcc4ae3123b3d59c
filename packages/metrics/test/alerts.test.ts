import { parseCacheConfigYaml } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { quantile } from '../src/alerts.js'
import {
  type AlertEvent,
  type CacheAlerts,
  createCacheAlerts,
  createCacheMetrics,
} from '../src/index.js'
import { dropPrefix, redis, uid } from './helpers.js'

let client: AnyRedisClient
const prefix = `aca${uid()}`
const open: { close(): unknown }[] = []
let t = Date.now()
const clock = { now: () => t, advance: (ms: number) => (t += ms) }

beforeAll(async () => {
  client = await redis()
})
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await (client as unknown as { close(): Promise<void> }).close()
})

const monitoring = parseCacheConfigYaml(`
monitoring:
  evaluation_interval: 10s
  alerts:
    low_hit_ratio: { threshold: 80%, level: l1, window: 1m, for: 30s, min_reads: 20 }
    high_memory: { max_size: 64KB, for: 0s }
    error_rate: { threshold: 10%, window: 1m, min_operations: 5 }
    slow_operations: { quantile: 0.9, threshold: 50ms, operations: [load], window: 1m, for: 0s }
`).monitoring!

function stack(): { cache: TieredCache; alerts: CacheAlerts; events: AlertEvent[] } {
  const l1 = createMemCache({ maxSize: 1024 * 1024, now: clock.now })
  const cache = createTieredCache({
    l1,
    l2: createRedisStore({ client, prefix }),
    now: clock.now,
    namespaces: { flaky: { ttl: 1000, grace: 600_000 } },
  })
  const metrics = createCacheMetrics({ l1 })
  const alerts = createCacheAlerts({ metrics, monitoring, now: clock.now })
  open.push(cache, l1, metrics, alerts)
  const events: AlertEvent[] = []
  alerts.on((e) => events.push(e))
  return { cache, alerts, events }
}

const brief = (events: AlertEvent[]) =>
  events.map((e) => `${e.name} ${e.state} ${Object.values(e.labels).join(',')}`)

describe('alerts on real traffic through a TieredCache', () => {
  it('low L1 hit ratio: pending for its `for`, firing, then resolved once the window is healthy', async () => {
    const { cache, alerts, events } = stack()
    const ns = cache.namespace<number>('players')
    for (let i = 0; i < 10; i++) await ns.set(`p${i}`, i)
    for (let r = 0; r < 10; r++) for (let i = 0; i < 10; i++) await ns.get(`p${i}`)
    expect(alerts.evaluate()).toEqual([])

    clock.advance(61_000) // the healthy reads leave the window
    for (let i = 0; i < 40; i++) await ns.getOrSet(`cold${i}`, () => i) // misses, loaded
    expect(alerts.evaluate()).toEqual([])
    expect(alerts.active()).toMatchObject([
      {
        name: 'ActorCacheLowHitRatio',
        state: 'pending',
        labels: { namespace: 'players', level: 'l1' },
      },
    ])
    clock.advance(30_000)
    for (let i = 40; i < 50; i++) await ns.getOrSet(`cold${i}`, () => i)
    expect(brief(alerts.evaluate())).toEqual(['ActorCacheLowHitRatio firing players,l1'])
    expect(events[0]).toMatchObject({ value: 0, threshold: 0.8, since: t - 30_000 })
    clock.advance(61_000)
    for (let r = 0; r < 5; r++) for (let i = 0; i < 50; i++) await ns.get(`cold${i}`)
    expect(brief(alerts.evaluate())).toEqual(['ActorCacheLowHitRatio resolved players,l1'])
    expect(brief(events)).toEqual([
      'ActorCacheLowHitRatio firing players,l1',
      'ActorCacheLowHitRatio resolved players,l1',
    ])
    expect(alerts.active()).toEqual([])
  })

  it('slow loads by quantile, measured with the cache’s clock', async () => {
    const { cache, alerts } = stack()
    const ns = cache.namespace<number>('items')
    for (let i = 0; i < 20; i++) {
      await ns.getOrSet(`i${i}`, () => {
        clock.advance(i < 15 ? 5 : 200) // 25% of the loads take 200 ms
        return i
      })
    }
    const fired = alerts.evaluate().filter((e) => e.name === 'ActorCacheSlowOperations')
    expect(brief(fired)).toEqual(['ActorCacheSlowOperations firing items,load'])
    expect(fired[0]!.value).toBeGreaterThan(50)
    clock.advance(61_000)
    for (let i = 20; i < 40; i++) {
      await ns.getOrSet(`i${i}`, () => {
        clock.advance(2)
        return i
      })
    }
    const resolved = alerts.evaluate().filter((e) => e.name === 'ActorCacheSlowOperations')
    expect(brief(resolved)).toEqual(['ActorCacheSlowOperations resolved items,load'])
  })

  it('error rate: a failing loader behind stale copies', async () => {
    const { cache, alerts } = stack()
    const ns = cache.namespace<number>('flaky')
    for (let i = 0; i < 5; i++) await ns.set(`f${i}`, i)
    for (let i = 0; i < 5; i++) await ns.get(`f${i}`)
    expect(alerts.evaluate().filter((e) => e.name === 'ActorCacheErrorRate')).toEqual([])
    clock.advance(2000) // past the TTL, within grace
    for (let i = 0; i < 5; i++) {
      const served = await ns.getOrSet(`f${i}`, () => {
        throw new Error('database down')
      })
      expect(served).toBe(i) // the stale copy
    }
    await ns.set('fresh', 1)
    for (let i = 0; i < 10; i++) await ns.get('fresh') // other reads go on
    const fired = alerts.evaluate().filter((e) => e.name === 'ActorCacheErrorRate')
    expect(brief(fired)).toEqual(['ActorCacheErrorRate firing '])
    expect(fired[0]!.value).toBeGreaterThan(0.1)
  })

  it('memory above its limit fires and resolves with the L1 bytes', async () => {
    const { cache, alerts } = stack()
    const ns = cache.namespace<string>('blobs')
    for (let i = 0; i < 40; i++) await ns.set(`b${i}`, 'x'.repeat(4096))
    const fired = alerts.evaluate().filter((e) => e.name === 'ActorCacheHighMemory')
    expect(brief(fired)).toEqual(['ActorCacheHighMemory firing '])
    expect(fired[0]!.value).toBeGreaterThan(64 * 1024)
    await cache.invalidate({ namespace: 'blobs', all: true })
    const resolved = alerts.evaluate().filter((e) => e.name === 'ActorCacheHighMemory')
    expect(brief(resolved)).toEqual(['ActorCacheHighMemory resolved '])
  })

  it('needs L1 for the memory alert', () => {
    expect(() => createCacheAlerts({ metrics: createCacheMetrics(), monitoring })).toThrow(
      /high_memory needs the L1 store/,
    )
  })
})

describe('quantile', () => {
  it('interpolates within a bucket like histogram_quantile', () => {
    const bounds = [0.01, 0.1, 1]
    expect(quantile(0.5, bounds, [0, 10, 10, 10])).toBeCloseTo(0.055)
    expect(quantile(0.99, bounds, [5, 5, 5, 10])).toBe(1) // in +Inf: the highest bound
    expect(quantile(0.5, bounds, [0, 0, 0, 0])).toBeUndefined()
  })
})
