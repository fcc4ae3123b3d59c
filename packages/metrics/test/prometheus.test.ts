import { createServer, type Server } from 'node:http'
import { parseCacheConfigYaml } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { createTieredCache } from '@actor-cache/strategies'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCacheMetrics, prometheusAlertRules } from '../src/index.js'
import { dropPrefix, eventually, redis, uid } from './helpers.js'
import { type PrometheusServer, privatePrometheus } from './prometheus-server.js'

let client: AnyRedisClient
const prefix = `acp${uid()}`

beforeAll(async () => {
  client = await redis()
})
afterAll(async () => {
  await dropPrefix(client, prefix)
  await (client as unknown as { close(): Promise<void> }).close()
})

interface Vector {
  result: { metric: Record<string, string>; value: [number, string] }[]
}
interface Alerts {
  alerts: { labels: Record<string, string>; state: string }[]
}

describe('a real Prometheus server', () => {
  it('scrapes the exposition and fires the generated rules on it', {
    timeout: 240_000,
  }, async () => {
    const l1 = createMemCache()
    const cache = createTieredCache({ l1, l2: createRedisStore({ client, prefix }) })
    const metrics = createCacheMetrics({ namespaces: ['players'], cache, l1 })
    const http: Server = createServer((_, res) => {
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (error) => res.writeHead(500).end(String(error)),
      )
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    const { monitoring } = parseCacheConfigYaml(
      'monitoring: { alerts: { low_hit_ratio: { threshold: 99%, window: 1m, for: 0s } } }',
    )
    let prometheus: PrometheusServer | undefined
    try {
      prometheus = await privatePrometheus(
        `127.0.0.1:${(http.address() as { port: number }).port}`,
        prometheusAlertRules(monitoring!),
      )
      const p = prometheus
      const ns = cache.namespace<number>('players')
      // traffic while Prometheus scrapes (its rates need counters that move between scrapes):
      // half the reads are loads of new keys, half L1 hits; until the generated rule fires
      let i = 0
      let fired = false
      const deadline = Date.now() + 90_000
      while (!fired && Date.now() < deadline) {
        for (let j = 0; j < 10; j++, i++) {
          await ns.getOrSet(`p${i}`, () => i)
          await ns.get(`p${i}`)
        }
        await new Promise((r) => setTimeout(r, 100))
        fired = (await p.api<Alerts>('/api/v1/alerts')).alerts.some(
          (a) =>
            a.labels.alertname === 'ActorCacheLowHitRatio' &&
            a.labels.namespace === 'players' &&
            a.state === 'firing',
        )
      }
      expect(fired, 'ActorCacheLowHitRatio (50% < 99%) to fire in Prometheus within 90 s').toBe(
        true,
      )
      // traffic stopped: the next scrapes see exactly this process's counters
      const reads = 2 * i
      await eventually(
        async () => {
          const v = await p.api<Vector>(
            `/api/v1/query?query=${encodeURIComponent('actor_cache_reads_total{namespace="players"}')}`,
          )
          return v.result[0]?.value[1] === String(reads)
        },
        60_000,
        `Prometheus to scrape ${reads} reads`,
      )
      const hits = await p.api<Vector>(
        `/api/v1/query?query=${encodeURIComponent('actor_cache_hits_total{namespace="players"}')}`,
      )
      expect(hits.result.map((r) => [r.metric.tier, r.value[1]])).toEqual([['l1', String(i)]])
    } finally {
      await prometheus?.stop()
      await new Promise((r) => http.close(r))
      metrics.close()
      await cache.close()
      await l1.close()
    }
  })
})
