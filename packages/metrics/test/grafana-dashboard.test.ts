import { createMemoryWriteQueue } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createTieredCache } from '@actor-cache/strategies'
import { describe, expect, it } from 'vitest'
import { createCacheMetrics, grafanaDashboard } from '../src/index.js'
import { promtool } from './helpers.js'

/** The panels' queries with Grafana's variables replaced by what Grafana would send. */
function queries(): string[] {
  return grafanaDashboard().panels.flatMap((p) =>
    p.targets.map((t) =>
      t.expr.replaceAll('$namespace', '.*').replaceAll('$__rate_interval', '1m'),
    ),
  )
}

describe('the Grafana dashboard', () => {
  it('has queries promtool parses (as recording rules)', async () => {
    const rules = [
      'groups:',
      '  - name: dashboard',
      '    rules:',
      ...queries().flatMap((expr, i) => [
        `      - record: panel_query_${i}`,
        `        expr: ${JSON.stringify(expr)}`,
      ]),
      '',
    ].join('\n')
    const check = await promtool(() => ['check', 'rules', 'rules.yml'], { 'rules.yml': rules })
    expect(check.output).toMatch(/SUCCESS/)
    expect(check.code).toBe(0)
  })

  it('queries only metrics the package exports', async () => {
    const l1 = createMemCache()
    const queue = createMemoryWriteQueue()
    const cache = createTieredCache({ l1 })
    const metrics = createCacheMetrics({ cache, l1, queue })
    try {
      const text = await metrics.metrics()
      const exported = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]))
      const used = new Set(
        queries()
          .flatMap((q) => [...q.matchAll(/actor_cache_[a-z0-9_]+/g)].map((m) => m[0]))
          .map((name) => name.replace(/_bucket$/, '')),
      )
      expect(used.size).toBeGreaterThan(10)
      for (const name of used) expect(exported, name).toContain(name)
    } finally {
      metrics.close()
      await cache.close()
      await queue.close()
      await l1.close()
    }
  })

  it('follows the prefix', () => {
    const d = grafanaDashboard({ prefix: 'game_', title: 'Game cache' })
    expect(d.title).toBe('Game cache')
    expect(JSON.stringify(d)).not.toContain('actor_cache_')
    expect(() => grafanaDashboard({ prefix: 'no spaces' })).toThrow(/prefix/)
  })
})
