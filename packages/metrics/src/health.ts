import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  type CacheEvent,
  type CacheTier,
  CHANNELS,
  InvalidOptionError,
  TIERED_CHANNELS,
  type TieredFlushEvent,
  validateNamespace,
  type WriteStrategy,
} from '@actor-cache/core'
import { type BusReset, type BusSource, BusWatch } from './bus-health.js'
import { errorCode } from './labels.js'
import { message, type RedisDetails, type RedisInfoSource, redisDetails } from './redis-info.js'
import type { QueueSource } from './sources.js'

/** State of a component or of the whole cache. */
export type HealthStatus = 'ok' | 'degraded' | 'down'

/** The components a health check can watch. */
export type HealthComponent = 'l1' | 'l2' | 'record' | 'bus' | 'queue'

/** The last error seen for a component (from the `actor-cache:error` events). */
export interface LastError {
  /** Stable code of an Actor Cache error, else `other`. */
  code: string
  message: string
  /** The operation that failed, as the event gives it. */
  operation: string | undefined
  /** When it was seen (the health check's clock, epoch ms). */
  at: number
}

/** What one component came to. */
export interface ComponentHealth {
  status: HealthStatus
  /** Why it is not `ok` (empty when it is). */
  reasons: string[]
  /** Errors reported for it within the error window. */
  recentErrors: number
  lastError: LastError | undefined
  /** How long the probe took, in ms (components without a probe: undefined). */
  probeMs: number | undefined
  /** For L2 with `redisInfo`: figures from Redis `INFO` (memory, clients, evictions). */
  details?: RedisDetails
  /** For the bus: the last time it told its listeners that messages may have been lost. */
  lastReset?: BusReset
}

/** A health report. See the README for what each field means to a load balancer. */
export interface HealthReport {
  status: HealthStatus
  /** The process can serve at all (L1 answers): restart it when false. */
  live: boolean
  /** Reads can be served (L1, or a lower tier when there is no L1). */
  ready: boolean
  /**
   * Writes can be accepted: false when the store of record is down and a namespace writes
   * through to it, or when the write-behind queue is down or full and a namespace writes behind.
   */
  readyForWrites: boolean
  components: Partial<Record<HealthComponent, ComponentHealth>>
  checkedAt: number
}

/** Options of {@link createHealthCheck}. Give the components the cache was built with. */
export interface HealthCheckOptions {
  /** L1: probed with an `exists` call. */
  l1?: CacheTier
  /** L2: probed with an `exists` call. Down means degraded, never unready. */
  l2?: CacheTier
  /** The store of record (L3): probed with an `exists` call. */
  record?: CacheTier
  /**
   * The invalidation bus. The health check listens to it (as a cache does) to hear its resets,
   * pings it when it has a `ping()` (`RedisBus` does), and counts its errors (`tier: 'bus'`, or an
   * operation starting with `bus`). Down or degraded, it never makes the cache unready.
   */
  bus?: BusSource
  /** The write-behind queue: probed with `stats()`. */
  queue?: QueueSource
  /**
   * The L2's Redis client: `INFO` is read with the L2 probe, its figures reported in the L2's
   * `details`, and L2 is `degraded` when its memory reaches `redisMemoryHighWater` of `maxmemory`.
   */
  redisInfo?: RedisInfoSource
  /** Fraction of Redis `maxmemory` from which L2 is `degraded`. @default 0.9 */
  redisMemoryHighWater?: number
  /**
   * Write strategies in use (`Object.values(config.strategies).map((s) => s.strategy)`): they
   * decide what a record or queue outage means for `readyForWrites`. @default ['write_through']
   */
  strategies?: readonly WriteStrategy[]
  /** Longest wait for a probe, in ms; a slower component is `down`. @default 1000 */
  probeTimeout?: number
  /** A component with errors this recent (ms) is at least `degraded`. @default 30_000 */
  errorWindow?: number
  /** The queue is `degraded` from this fraction of its capacity, and full at 1. @default 0.9 */
  queueHighWater?: number
  /** Namespace the tier probes look into (nothing is written). @default 'actor-cache.health' */
  probeNamespace?: string
  /** Clock in epoch ms. @default Date.now */
  now?: () => number
}

interface ErrorLog {
  times: number[]
  last: LastError | undefined
}

const STRATEGIES: readonly WriteStrategy[] = ['write_through', 'write_behind', 'write_around']

/**
 * Health of each component and of the cache, from probes (bounded by `probeTimeout`) and from the
 * errors the components report on `node:diagnostics_channel`. It subscribes when created and
 * {@link HealthCheck.close} unsubscribes; it never closes the components it watches.
 */
export class HealthCheck {
  readonly #o: Required<
    Pick<
      HealthCheckOptions,
      'probeTimeout' | 'errorWindow' | 'queueHighWater' | 'probeNamespace' | 'now'
    >
  > &
    HealthCheckOptions
  readonly #errors = new Map<HealthComponent, ErrorLog>()
  readonly #tierOf = new Map<string, HealthComponent[]>()
  #flushRetrying: { at: number } | undefined
  readonly #bus: BusWatch | undefined
  readonly #onError = (m: unknown) => this.#error(m as CacheEvent)
  readonly #onFlush = (m: unknown) => {
    const e = m as TieredFlushEvent
    this.#flushRetrying = e.outcome === 'retry' ? { at: this.#o.now() } : undefined
  }
  #closed = false

  constructor(options: HealthCheckOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', 'must be an object')
    }
    for (const name of ['l1', 'l2', 'record'] as const) {
      const tier = options[name]
      if (tier !== undefined && typeof tier?.namespace !== 'function') {
        throw new InvalidOptionError(
          name,
          'must be a cache tier (an object with a namespace method)',
        )
      }
    }
    if (options.redisInfo !== undefined && typeof options.redisInfo?.info !== 'function') {
      throw new InvalidOptionError(
        'redisInfo',
        'must be a Redis client (an object with an info method)',
      )
    }
    if (options.redisInfo !== undefined && options.l2 === undefined) {
      throw new InvalidOptionError('redisInfo', 'needs l2 (INFO is read with the L2 probe)')
    }
    const rhw = options.redisMemoryHighWater
    if (rhw !== undefined && !(typeof rhw === 'number' && rhw > 0 && rhw <= 1)) {
      throw new InvalidOptionError('redisMemoryHighWater', `must be in (0, 1], got ${String(rhw)}`)
    }
    if (options.bus !== undefined && typeof options.bus?.subscribe !== 'function') {
      throw new InvalidOptionError(
        'bus',
        'must be an invalidation bus (an object with a subscribe method)',
      )
    }
    if (options.queue !== undefined && typeof options.queue?.stats !== 'function') {
      throw new InvalidOptionError('queue', 'must be a write queue (an object with a stats method)')
    }
    for (const name of ['probeTimeout', 'errorWindow'] as const) {
      const v = options[name]
      if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) {
        throw new InvalidOptionError(name, `must be a positive number of ms, got ${String(v)}`)
      }
    }
    const hw = options.queueHighWater
    if (hw !== undefined && !(typeof hw === 'number' && hw > 0 && hw <= 1)) {
      throw new InvalidOptionError('queueHighWater', `must be in (0, 1], got ${String(hw)}`)
    }
    if (options.strategies !== undefined) {
      for (const s of options.strategies) {
        if (!STRATEGIES.includes(s)) {
          throw new InvalidOptionError('strategies', `unknown strategy ${JSON.stringify(s)}`)
        }
      }
    }
    this.#o = {
      ...options,
      probeTimeout: options.probeTimeout ?? 1000,
      errorWindow: options.errorWindow ?? 30_000,
      queueHighWater: options.queueHighWater ?? 0.9,
      probeNamespace: validateNamespace(options.probeNamespace ?? 'actor-cache.health'),
      now: options.now ?? Date.now,
    }
    for (const name of ['l1', 'l2', 'record'] as const) {
      const tier = options[name]
      if (tier === undefined) continue
      const list = this.#tierOf.get(tier.tier) ?? []
      list.push(name)
      this.#tierOf.set(tier.tier, list)
    }
    subscribe(CHANNELS.error, this.#onError)
    subscribe(TIERED_CHANNELS.flush, this.#onFlush)
    this.#bus = options.bus === undefined ? undefined : new BusWatch(options.bus, this.#o.now)
  }

  /** Probes every component (in parallel, each within `probeTimeout`) and reports. */
  async check(): Promise<HealthReport> {
    const o = this.#o
    const components: Partial<Record<HealthComponent, ComponentHealth>> = {}
    const jobs: Promise<void>[] = []
    const add = (name: HealthComponent, job: Promise<ComponentHealth>) => {
      jobs.push(
        job.then((c) => {
          components[name] = c
        }),
      )
    }
    for (const name of ['l1', 'l2', 'record'] as const) {
      const tier = o[name]
      if (tier !== undefined) add(name, this.#tierHealth(name, tier))
    }
    if (o.queue !== undefined) add('queue', this.#queueHealth(o.queue))
    if (this.#bus !== undefined) add('bus', this.#busHealth(this.#bus))
    await Promise.all(jobs)
    return {
      ...verdict(components, o.strategies ?? ['write_through']),
      components,
      checkedAt: o.now(),
    }
  }

  /** A tier: an `exists` probe (and Redis `INFO` for L2 with `redisInfo`). */
  async #tierHealth(name: 'l1' | 'l2' | 'record', tier: CacheTier): Promise<ComponentHealth> {
    const o = this.#o
    let details: RedisDetails | undefined
    const c = await this.#probe(name, async () => {
      await tier.namespace(o.probeNamespace).exists('probe')
      if (name !== 'l2' || o.redisInfo === undefined) return undefined
      details = await redisDetails(o.redisInfo)
      const { usedMemory: used, maxMemory: max } = details
      const hw = o.redisMemoryHighWater ?? 0.9
      if (used !== undefined && max !== undefined && max > 0 && used >= hw * max) {
        return `Redis memory at ${Math.round((used / max) * 100)}% of maxmemory (${used} of ${max} bytes)`
      }
      return undefined
    })
    if (details !== undefined) c.details = details
    return c
  }

  /** The queue: `stats()` against its capacity, and whether the last flush was refused. */
  async #queueHealth(queue: QueueSource): Promise<ComponentHealth> {
    const highWater = this.#o.queueHighWater
    const c = await this.#probe('queue', async () => {
      const s = await queue.stats()
      const used = s.ready + s.inFlight
      if (s.capacity > 0 && used >= s.capacity) return `full (${used} of ${s.capacity})`
      if (s.capacity > 0 && used >= highWater * s.capacity) {
        return `nearly full (${used} of ${s.capacity})`
      }
      return undefined
    })
    if (this.#flushRetrying !== undefined) {
      if (c.status === 'ok') c.status = 'degraded'
      c.reasons.push('the store of record refused the last flush; writes stay queued')
    }
    return c
  }

  /** Unsubscribes from the error and flush events and removes its bus listener. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    unsubscribe(CHANNELS.error, this.#onError)
    unsubscribe(TIERED_CHANNELS.flush, this.#onFlush)
    this.#bus?.close()
  }

  /** The bus: pinged when it can be (a failed ping is its last error), its recent resets. */
  async #busHealth(bus: BusWatch): Promise<ComponentHealth> {
    const c = await this.#probe('bus', async () => {
      try {
        return await bus.check(this.#o.errorWindow)
      } catch (error) {
        this.#record(['bus'], error, 'ping')
        throw error
      }
    })
    if (!bus.probed) c.probeMs = undefined
    const reset = bus.lastReset
    if (reset !== undefined) c.lastReset = reset
    return c
  }

  /** Runs `probe` within the timeout: down when it throws or is late; its result is a reason to degrade. */
  async #probe(name: HealthComponent, probe: () => Promise<unknown>): Promise<ComponentHealth> {
    const started = performance.now()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<{ late: true }>((resolve) => {
      timer = setTimeout(resolve, this.#o.probeTimeout, { late: true })
    })
    const reasons: string[] = []
    let down = false
    try {
      const result = await Promise.race([probe().then((v) => ({ late: false as const, v })), late])
      if (result.late) {
        down = true
        reasons.push(`no answer within ${this.#o.probeTimeout} ms`)
      } else if (typeof result.v === 'string') {
        reasons.push(result.v)
      }
    } catch (error) {
      down = true
      reasons.push(`probe failed: ${message(error)}`)
    } finally {
      clearTimeout(timer)
    }
    return this.#fromErrors(
      name,
      down ? 'down' : reasons.length > 0 ? 'degraded' : 'ok',
      reasons,
      performance.now() - started,
    )
  }

  /** A component's health from its probe's verdict (if any) and its recent errors. */
  #fromErrors(
    name: HealthComponent,
    probed: HealthStatus | undefined,
    reasons: string[],
    probeMs?: number,
  ): ComponentHealth {
    const log = this.#errors.get(name)
    const since = this.#o.now() - this.#o.errorWindow
    if (log !== undefined) {
      while (log.times.length > 0 && (log.times[0] as number) < since) log.times.shift()
    }
    const recent = log?.times.length ?? 0
    let status: HealthStatus = probed ?? 'ok'
    if (recent > 0) {
      reasons.push(
        `${recent} error${recent === 1 ? '' : 's'} in the last ${this.#o.errorWindow} ms`,
      )
      if (status === 'ok') status = 'degraded'
    }
    return { status, reasons, recentErrors: recent, lastError: log?.last, probeMs }
  }

  #error(e: CacheEvent): void {
    const operation = e.operation
    let targets: readonly HealthComponent[]
    if (e.tier === 'bus' || operation?.startsWith('bus')) targets = ['bus']
    else if (e.tier === 'write-behind') targets = ['queue']
    else targets = this.#tierOf.get(e.tier) ?? []
    this.#record(targets, e.error, operation)
  }

  #record(targets: readonly HealthComponent[], error: unknown, operation?: string): void {
    const at = this.#o.now()
    for (const name of targets) {
      let log = this.#errors.get(name)
      if (log === undefined) {
        log = { times: [], last: undefined }
        this.#errors.set(name, log)
      }
      log.times.push(at)
      if (log.times.length > 10_000) log.times.shift()
      log.last = { code: errorCode(error), message: message(error), operation, at }
    }
  }
}

/** The cache's verdict from its components' health. */
function verdict(
  components: Partial<Record<HealthComponent, ComponentHealth>>,
  strategies: readonly WriteStrategy[],
): Pick<HealthReport, 'status' | 'live' | 'ready' | 'readyForWrites'> {
  const isDown = (c: ComponentHealth | undefined) => c?.status === 'down'
  const live = !isDown(components.l1)
  const readTiers = [components.l1, components.l2, components.record].filter((c) => c !== undefined)
  const ready =
    live &&
    (components.l1 !== undefined
      ? !isDown(components.l1)
      : readTiers.length === 0 || readTiers.some((c) => !isDown(c)))
  const queueFull = components.queue?.reasons.some((r) => r.startsWith('full')) ?? false
  const readyForWrites =
    ready &&
    !(strategies.includes('write_through') && isDown(components.record)) &&
    !(strategies.includes('write_behind') && (isDown(components.queue) || queueFull))
  const anyUnhealthy = Object.values(components).some((c) => c.status !== 'ok')
  const status = !ready ? 'down' : anyUnhealthy || !readyForWrites ? 'degraded' : 'ok'
  return { status, live, ready, readyForWrites }
}

/**
 * A health check of the components a cache was built with.
 * @example
 * const health = createHealthCheck({ l1, l2, record: l3, bus, queue, strategies: ['write_through'] })
 * const report = await health.check() // { status, live, ready, readyForWrites, components }
 */
export function createHealthCheck(options: HealthCheckOptions = {}): HealthCheck {
  return new HealthCheck(options)
}
