import { execFile } from 'node:child_process'
import { createMemoryChangeLog, tieredChannels } from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { createStateTracker } from '@actor-cache/state-tracker'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createCacheMetrics } from '../src/index.js'
import { createOtelMetrics, type OtelMetrics } from '../src/otel.js'
import { dropPrefix, redis, sample, uid } from './helpers.js'

let client: AnyRedisClient
const prefix = `acmo${uid()}`
const open: { close(): unknown }[] = []

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

/** A real SDK pipeline: a meter provider whose reader exports to memory when flushed. */
function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // exports only when flushed: the interval never comes within a test
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  open.push({ close: () => provider.shutdown() })
  /** The metrics of one collection, by instrument name. */
  const collect = async (): Promise<Map<string, MetricData>> => {
    exporter.reset()
    await reader.forceFlush()
    const out = new Map<string, MetricData>()
    for (const rm of exporter.getMetrics())
      for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m)
    return out
  }
  return { meter: provider.getMeter('actor-cache-test'), collect }
}

/** The value of the data point of `metric` whose attributes are exactly `labels`. */
function point(
  metrics: Map<string, MetricData>,
  name: string,
  labels: Record<string, string> = {},
): unknown {
  const want = Object.entries(labels)
  const m = metrics.get(name)
  for (const p of m?.dataPoints ?? []) {
    const got = Object.entries(p.attributes)
    if (got.length === want.length && want.every(([k, v]) => p.attributes[k] === v)) return p.value
  }
  return undefined
}

function instance(): { cache: TieredCache; l1: MemCache } {
  const l1 = createMemCache({ maxSize: 4 * 1024 * 1024 })
  const cache = createTieredCache({ l1, l2: createRedisStore({ client, prefix }) })
  open.push(cache, l1)
  return { cache, l1 }
}

function track(m: OtelMetrics): OtelMetrics {
  open.push(m)
  return m
}

/** Reads, loads, writes and deletes over a few keys, from two instances sharing Redis. */
async function traffic(a: TieredCache, b: TieredCache, namespace: string): Promise<void> {
  const na = a.namespace<number>(namespace)
  const nb = b.namespace<number>(namespace)
  for (let i = 0; i < 40; i++) {
    const key = `k${i % 8}`
    await na.getOrSet(key, () => (i % 5 === 0 ? undefined : i))
    await na.get(key)
    if (i % 3 === 0) await nb.set(key, i) // B's write: A's next read of it comes from Redis
    if (i % 7 === 0) await na.delete(key)
    await nb.get(`missing${i % 4}`)
  }
}

describe('OpenTelemetry metrics through a real SDK MeterProvider', () => {
  it('record the change-stream series with streamEvents, as the Prometheus metrics do', async () => {
    const { meter, collect } = sdk()
    track(createOtelMetrics({ meter, streamEvents: true }))
    const prom = createCacheMetrics({ streamEvents: true })
    open.push(prom)
    const log = createMemoryChangeLog()
    const tracker = createStateTracker({ log, systemId: 'test' })
    const stream = tracker.changeStream({ pollInterval: 10 })
    open.push(stream)
    const sub = stream.subscribe({ entityType: 'otel_core' }, { afterTime: 0 })
    for (let v = 1; v <= 3; v++) {
      await tracker.trackChange({
        entityType: 'otel_core',
        entityId: 'actor:1',
        changeType: v === 1 ? 'create' : 'update',
        newValue: { v },
        userId: 'user:test',
      })
      expect((await sub.next()).value?.version).toBe(v)
    }
    const text = await prom.metrics()
    const got = await collect()
    const lag = got.get('actor_cache.stream_lag')
    expect(lag?.descriptor.unit).toBe('s')
    const lagPoint = lag?.dataPoints[0]?.value as { count: number; sum: number }
    expect(lagPoint.count).toBeGreaterThan(0)
    expect(lagPoint.count).toBe(sample(text, 'actor_cache_stream_lag_seconds_count'))
    expect(lagPoint.sum).toBeCloseTo(
      sample(text, 'actor_cache_stream_lag_seconds_sum') as number,
      9,
    )
    const changes = got.get('actor_cache.stream_lag_changes')?.dataPoints[0]?.value as {
      count: number
    }
    expect(changes.count).toBe(sample(text, 'actor_cache_stream_lag_changes_count'))
    expect(point(got, 'actor_cache.stream_gaps_unresolved')).toBe(0)
    expect(sample(text, 'actor_cache_stream_gaps_unresolved')).toBe(0)
  })

  it('record the same series as the Prometheus metrics, from the same events', async () => {
    const a = instance()
    const b = instance()
    const { meter, collect } = sdk()
    const shared = { namespaces: ['players'], cache: a.cache, l1: a.l1, hitEvents: true }
    track(createOtelMetrics({ meter, ...shared }))
    const prom = createCacheMetrics(shared)
    open.push(prom)
    await traffic(a.cache, b.cache, 'players')
    const text = await prom.metrics()
    const got = await collect()

    const sa = a.cache.stats().namespaces.players!
    const sb = b.cache.stats().namespaces.players!
    const hits = (level: string) =>
      point(got, 'actor_cache.hits', { namespace: 'players', tier: level })
    expect(hits('l1')).toBe(sa.l1Hits + sb.l1Hits)
    expect(sa.lowerHits + sb.lowerHits).toBeGreaterThan(0)
    expect(hits('l2')).toBe(sa.lowerHits + sb.lowerHits)
    expect(point(got, 'actor_cache.misses', { namespace: 'players' })).toBe(sa.misses + sb.misses)
    // every counter, labelled alike, equals its Prometheus twin
    const counters = ['reads', 'hits', 'misses', 'loads', 'writes', 'negative_hits']
    for (const name of counters) {
      const m = got.get(`actor_cache.${name}`)
      expect(m?.dataPoints.length, name).toBeGreaterThan(0)
      for (const p of m?.dataPoints ?? []) {
        const labels = p.attributes as Record<string, string>
        expect(p.value, `${name} ${JSON.stringify(labels)}`).toBe(
          sample(text, `actor_cache_${name}_total`, labels),
        )
      }
    }
    for (const level of ['overall', 'l1', 'l2']) {
      expect(point(got, 'actor_cache.hit_ratio', { namespace: 'players', level })).toBeCloseTo(
        sample(text, 'actor_cache_hit_ratio', { namespace: 'players', level }) as number,
        12,
      )
    }
    // histograms: the loader calls, with the buckets asked for
    const loads = got.get('actor_cache.operation_duration')
    expect(loads?.descriptor.unit).toBe('s')
    const loadPoint = loads?.dataPoints.find((p) => p.attributes.operation === 'load')
    const histogram = loadPoint?.value as { count: number; buckets: { boundaries: number[] } }
    expect(histogram.count).toBe(
      sample(text, 'actor_cache_operation_duration_seconds_count', {
        namespace: 'players',
        operation: 'load',
      }),
    )
    expect(histogram.buckets.boundaries[0]).toBe(0.0005)
    expect(point(got, 'actor_cache.l1_entries')).toBe(a.l1.stats().entries)
    expect(point(got, 'actor_cache.l1_bytes')).toBe(a.l1.stats().bytes)

    // later traffic: the observable counters are cumulative
    const before = point(got, 'actor_cache.reads', { namespace: 'players' }) as number
    await a.cache.namespace<number>('players').get('k1')
    const after = await collect()
    expect(point(after, 'actor_cache.reads', { namespace: 'players' })).toBe(before + 1)
  })

  it('close() unsubscribes and stops observing; the meter stays the user’s', async () => {
    const a = instance()
    const { meter, collect } = sdk()
    const otel = createOtelMetrics({ meter, cache: a.cache })
    const ns = a.cache.namespace<number>('closing')
    await ns.getOrSet('k', () => 1)
    expect(tieredChannels.load.hasSubscribers).toBe(true)
    expect(
      point(await collect(), 'actor_cache.loads', {
        namespace: 'closing',
        purpose: 'read',
        outcome: 'value',
      }),
    ).toBe(1)
    otel.close()
    otel.close()
    expect(tieredChannels.load.hasSubscribers).toBe(false)
    // no longer observed: the SDK may repeat the last cumulative value, never a newer one
    await ns.getOrSet('k2', () => 2)
    const after = point(await collect(), 'actor_cache.loads', {
      namespace: 'closing',
      purpose: 'read',
      outcome: 'value',
    })
    expect(after === undefined || after === 1).toBe(true)
    // a new one on the same meter counts again
    const again = track(createOtelMetrics({ meter, cache: a.cache }))
    await ns.get('k')
    expect(again).toBeDefined()
    expect(point(await collect(), 'actor_cache.hits', { namespace: 'closing', tier: 'l1' })).toBe(1)
  })

  it('rejects bad options naming the option', () => {
    const { meter } = sdk()
    expect(() => createOtelMetrics({} as never)).toThrow(/meter: must be an OpenTelemetry Meter/)
    expect(() => createOtelMetrics({ meter, prefix: '1x' })).toThrow(/prefix: must match/)
    expect(() => createOtelMetrics({ meter, hitEvents: false })).toThrow(
      /hitEvents: false needs cache/,
    )
    expect(() => createOtelMetrics({ meter, buckets: [] })).toThrow(/buckets/)
  })
})

describe('without @opentelemetry/api installed', () => {
  it('both entries of the built package import: nothing loads the API at run time', async () => {
    // a child process whose resolver refuses every @opentelemetry package, as if not installed
    const hooks = `export async function resolve(specifier, context, next) {
      if (specifier.startsWith('@opentelemetry/')) throw new Error('not installed: ' + specifier)
      return next(specifier, context)
    }`
    const script = `
      import { register } from 'node:module'
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}))
      const main = await import('@actor-cache/metrics')
      const otel = await import('@actor-cache/metrics/otel')
      let refused = false
      try { await import('@opentelemetry/api') } catch { refused = true }
      console.log(JSON.stringify({ main: typeof main.createCacheMetrics, otel: typeof otel.createOtelMetrics, refused }))`
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd: new URL('..', import.meta.url) },
        (error, stdout, stderr) =>
          error
            ? reject(new Error(`${error.message}\n${stderr}\n(run pnpm build first)`))
            : resolve(stdout),
      )
    })
    expect(JSON.parse(out)).toEqual({ main: 'function', otel: 'function', refused: true })
  })
})
