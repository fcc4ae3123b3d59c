import {
  type CacheEntry,
  type CacheStore,
  InvalidOptionError,
  TimeoutError,
  validateKey,
} from '@actor-cache/core'
import { type Caching, LoadContext } from './cache-directives.js'
import { loadWatched, publishHit, publishLoad, publishMiss } from './events.js'
import type { LoaderRunner, Seen } from './loader-runner.js'
import type { NamespaceParts } from './namespace-context.js'
import type { BatchLoader, Loader } from './policy.js'
import { heldHit } from './read-path.js'

/** What one batch loader call answered, and how it asked for the answers to be cached. */
interface BatchLoaded<V> {
  readonly values: (V | undefined)[]
  readonly caching: Caching
  readonly startedAt: number
}

/** One `getMany` past L1 and the flights it joined, phase by phase. */
interface Batch<V> {
  readonly keys: readonly string[]
  readonly out: (V | undefined)[]
  /** The newest copy within grace of each key. */
  readonly stale: (CacheEntry<V> | undefined)[]
  /** What each tier held for each key, for the compare-and-set of loaded values. */
  readonly seen: Seen<V>[]
  /** Indexes of the keys no phase has answered yet. */
  rest: number[]
  /** A cache tier failed. */
  failed: boolean
  /** The fill guard's token when the read began. */
  readonly token: number
  readonly now: number
}

/**
 * Batch reads (`getMany`): every tier is read with one batch call for the keys still missing,
 * then the record, then the batch loader in one call (else the loader per key). Keys another read
 * is already loading are joined, not loaded twice.
 */
export class BatchRead<V> {
  /** The namespace's parts this one works with. */
  readonly #ns: NamespaceParts<V>
  readonly #loads: LoaderRunner<V>

  constructor(parts: NamespaceParts<V>, loads: LoaderRunner<V>) {
    this.#ns = parts
    this.#loads = loads
  }

  /** Values for `keys`, in order: L1 synchronously, then one batch read of the rest. */
  async getMany(keys: readonly string[], batchLoader?: BatchLoader<V>): Promise<(V | undefined)[]> {
    if (!Array.isArray(keys)) throw new InvalidOptionError('keys', 'must be an array of keys')
    for (const key of keys) validateKey(key, this.#ns.name)
    if (batchLoader !== undefined && typeof batchLoader !== 'function') {
      throw new InvalidOptionError('batchLoader', `must be a function, got ${typeof batchLoader}`)
    }
    const out: (V | undefined)[] = new Array(keys.length)
    const waiting = new Map<string, number[]>()
    const l1 = this.#ns.tiers.l1sync
    const now = this.#ns.ctx.now()
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string
      const e = l1?.getSync(key)
      if (e !== undefined && this.#ns.freshness.usable(key, e, this.#ns.policy.loader)) {
        out[i] = e.value
        this.#ns.stats.l1Hits++
        publishHit(this.#ns.name, key, l1?.tier ?? '', 'l1')
        continue
      }
      if (this.#ns.negative.answers(key, now)) continue
      const at = waiting.get(key)
      if (at === undefined) waiting.set(key, [i])
      else at.push(i)
    }
    if (waiting.size === 0) return out
    const joined: Promise<void>[] = []
    const fresh: string[] = []
    const loads =
      (batchLoader ?? this.#ns.policy.batchLoader ?? this.#ns.policy.loader) !== undefined
    for (const key of waiting.keys()) {
      const flight = this.#ns.flights.joinable(key, loads, now)
      if (flight === undefined) fresh.push(key)
      else {
        if (flight.freshUntil !== undefined) heldHit(this.#ns, key)
        joined.push(flight.read.then((v) => place(out, waiting.get(key) as number[], v)))
      }
    }
    if (fresh.length > 0) {
      const batch = this.#readMany(fresh, batchLoader ?? this.#ns.policy.batchLoader)
      for (let j = 0; j < fresh.length; j++) {
        const key = fresh[j] as string
        const p = batch.then((values) => values[j])
        this.#ns.flights.startRead(key, p, { loaderless: !loads })
        joined.push(p.then((v) => place(out, waiting.get(key) as number[], v)))
      }
    }
    await Promise.all(joined)
    return out
  }

  async #readMany(
    keys: string[],
    batchLoader: BatchLoader<V> | undefined,
  ): Promise<(V | undefined)[]> {
    const token = this.#ns.guard.token
    const b: Batch<V> = {
      keys,
      out: new Array(keys.length),
      stale: new Array(keys.length),
      seen: keys.map(() => []),
      rest: keys.map((_, i) => i),
      failed: false,
      token,
      now: this.#ns.ctx.now(),
    }
    await this.#fromCaches(b)
    // keys this instance deleted and has not flushed yet skip the record (the loader decides)
    const deleted = await this.#fromUnflushed(b)
    await this.#fromRecord(b)
    if (deleted.length > 0) b.rest = b.rest.concat(deleted)
    if (b.rest.length > 0) await this.#fromLoaders(b, batchLoader)
    return b.out
  }

  /** One batch call per cache tier, top down, for the keys still missing. */
  async #fromCaches(b: Batch<V>): Promise<void> {
    const { caches, l1sync } = this.#ns.tiers
    for (let t = 0; t < caches.length && b.rest.length > 0; t++) {
      const tier = caches[t] as CacheStore<V>
      let entries: (CacheEntry<V> | undefined)[]
      try {
        // L1 was looked at synchronously already; look again (no I/O) for what it holds now
        entries =
          tier === l1sync
            ? b.rest.map((i) => l1sync.getSync(b.keys[i] as string))
            : await tier.getMany(b.rest.map((i) => b.keys[i] as string))
        const tags = new Set<string>()
        for (const e of entries) for (const tag of e?.tags ?? []) tags.add(tag)
        if (tags.size > 0 && t > 0) await this.#ns.ctx.tags.ensure([...tags])
      } catch (error) {
        this.#ns.tiers.report(tier.tier, 'getMany', error)
        b.failed = true
        for (const i of b.rest) (b.seen[i] as Seen<V>)[t] = null
        continue
      }
      const next: number[] = []
      for (let j = 0; j < b.rest.length; j++) {
        const i = b.rest[j] as number
        const key = b.keys[i] as string
        let e = entries[j]
        ;(b.seen[i] as Seen<V>)[t] = e
        if (e !== undefined && this.#ns.unflushed.hides(key, e)) e = undefined
        const state = e === undefined ? 'dead' : this.#ns.freshness.classify(e, b.now)
        if (e !== undefined && state === 'fresh') {
          b.out[i] = e.value
          publishHit(this.#ns.name, key, tier.tier, this.#ns.tiers.levels[t] ?? 'l2')
          if (t === 0) this.#ns.stats.l1Hits++
          else {
            this.#ns.stats.lowerHits++
            await this.#ns.tiers.copyUp(key, e, t, b.token)
          }
          continue
        }
        const stale = b.stale[i]
        if (
          e !== undefined &&
          state === 'stale' &&
          (stale === undefined || e.version > stale.version)
        )
          b.stale[i] = e
        next.push(i)
      }
      b.rest = next
    }
  }

  /** Keys with an unflushed write of this instance; returns those it deleted (no record read). */
  async #fromUnflushed(b: Batch<V>): Promise<number[]> {
    const deleted: number[] = []
    if (this.#ns.unflushed.size === 0 || b.rest.length === 0) return deleted
    const next: number[] = []
    for (const i of b.rest) {
      const key = b.keys[i] as string
      const unflushed = this.#ns.unflushed.of(key)
      if (unflushed === undefined) next.push(i)
      else {
        const served = await this.#ns.unflushed.serve(key, unflushed, b.token)
        if (served !== undefined) b.out[i] = served.value
        else deleted.push(i)
      }
    }
    b.rest = next
    return deleted
  }

  /** One batch read of the record; when it fails, stale copies within grace or the failure. */
  async #fromRecord(b: Batch<V>): Promise<void> {
    const record = this.#ns.tiers.record
    if (record === undefined || b.rest.length === 0) return
    try {
      const entries = await record.getMany(b.rest.map((i) => b.keys[i] as string))
      const next: number[] = []
      for (let j = 0; j < b.rest.length; j++) {
        const i = b.rest[j] as number
        const e = entries[j]
        if (e !== undefined && (e.expiresAt === null || b.now < e.expiresAt)) {
          b.out[i] = e.value
          this.#ns.stats.recordHits++
          publishHit(this.#ns.name, b.keys[i] as string, record.tier, 'record')
          await this.#ns.tiers.fill(b.keys[i] as string, e, b.token)
        } else next.push(i)
      }
      b.rest = next
    } catch (error) {
      // as for get: keys the record may hold get a stale value within grace, else the failure
      this.#ns.tiers.report(record.tier, 'getMany', error)
      if (!b.rest.every((i) => b.stale[i] !== undefined)) throw error
      for (const i of b.rest) b.out[i] = this.#stale(b, i)
      b.rest = []
    }
  }

  /** Keys no tier had: the batch loader in one call, else the loader per key. */
  async #fromLoaders(b: Batch<V>, batchLoader: BatchLoader<V> | undefined): Promise<void> {
    const loader = this.#ns.policy.loader
    if (batchLoader === undefined && loader === undefined) {
      for (const i of b.rest) {
        const stale = b.stale[i]
        if (b.failed && stale !== undefined) b.out[i] = this.#stale(b, i)
        else {
          this.#ns.stats.misses++
          publishMiss(this.#ns.name, b.keys[i] as string)
        }
      }
      return
    }
    let loaded: BatchLoaded<V>
    try {
      if (batchLoader === undefined) {
        const values = await Promise.all(
          b.rest.map((i) =>
            this.#loads.load(b.keys[i] as string, loader as Loader<V>, {
              stale: b.stale[i],
              token: b.token,
              seen: b.seen[i],
            }),
          ),
        )
        for (let j = 0; j < b.rest.length; j++) b.out[b.rest[j] as number] = values[j]
        return
      }
      loaded = await this.#batchLoad(b, batchLoader)
    } catch (error) {
      if (b.rest.every((i) => b.stale[i] !== undefined)) {
        this.#ns.tiers.report('loader', 'loadMany', error)
        for (const i of b.rest) b.out[i] = this.#stale(b, i)
        return
      }
      throw error
    }
    const { values, caching, startedAt } = loaded
    for (let j = 0; j < b.rest.length; j++) {
      const i = b.rest[j] as number
      b.out[i] = values[j]
      if (values[j] === undefined) this.#loads.missed(b.keys[i] as string, b.token, caching)
    }
    const from = { token: b.token, startedAt }
    await Promise.all(
      b.rest.map((i, j) =>
        values[j] === undefined
          ? undefined
          : this.#loads.storeLoaded(
              b.keys[i] as string,
              values[j] as V,
              { ...from, seen: b.seen[i] },
              caching,
            ),
      ),
    )
  }

  /** Answers key `i` of the batch with its copy within grace. */
  #stale(b: Batch<V>, i: number): V {
    return this.#ns.freshness.serveStale(b.stale[i] as CacheEntry<V>, b.keys[i] as string)
  }

  /** One call of the batch loader under the hard timeout, as values in the order of the keys. */
  async #batchLoad(b: Batch<V>, batchLoader: BatchLoader<V>): Promise<BatchLoaded<V>> {
    const missing = b.rest.map((i) => b.keys[i] as string)
    this.#ns.stats.loads++
    const startedAt = this.#ns.ctx.now()
    const context = new LoadContext<V>(this.#ns.name, undefined)
    const call = this.#loads.bounded(
      'batch loader',
      undefined,
      () => batchLoader(missing, context),
      context,
    )
    const r = await (loadWatched() ? watchBatch(this.#ns, missing.length, startedAt, call) : call)
    const caching = context.settle()
    const values =
      r instanceof Map ? missing.map((k) => r.get(k)) : Array.from(r as readonly (V | undefined)[])
    if (values.length !== missing.length) {
      throw new InvalidOptionError(
        'batchLoader',
        `returned ${values.length} values for ${missing.length} keys`,
      )
    }
    return { values, caching, startedAt }
  }
}

/** Publishes how a batch loader call ended (someone listens to load events). */
async function watchBatch<R>(
  ns: Pick<NamespaceParts<unknown>, 'name' | 'ctx'>,
  count: number,
  startedAt: number,
  call: Promise<R>,
): Promise<R> {
  const event = { namespace: ns.name, count, purpose: 'read' as const }
  try {
    const r = await call
    const found =
      r instanceof Map ? r.size : (r as readonly unknown[]).filter((v) => v !== undefined).length
    publishLoad({ ...event, found, durationMs: ns.ctx.now() - startedAt, outcome: 'value' })
    return r
  } catch (error) {
    const outcome = error instanceof TimeoutError ? ('timeout' as const) : ('error' as const)
    publishLoad({ ...event, durationMs: ns.ctx.now() - startedAt, outcome, error })
    throw error
  }
}

function place<V>(out: (V | undefined)[], at: number[], value: V | undefined): void {
  for (const i of at) out[i] = value
}
