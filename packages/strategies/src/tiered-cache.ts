import {
  type CacheStore,
  ClosedError,
  createMemoryWriteQueue,
  InvalidKeyError,
  InvalidOptionError,
  type QueuedWrite,
  validateNamespace,
  type WriteQueue,
} from '@actor-cache/core'
import { BackgroundFills } from './background-fills.js'
import { WriteBehindFlusher } from './flusher.js'
import {
  expandEvent,
  type InvalidationTarget,
  TAG_NAMESPACE,
  TagClock,
  validateTarget,
} from './invalidation.js'
import { InvalidationDispatch, type Namespaces } from './invalidation-dispatch.js'
import { createNamespace, type NamespaceStats, type TieredNamespace } from './namespace.js'
import type { NamespaceContext, NamespaceInternals } from './namespace-context.js'
import {
  type AnyNamespacePolicy,
  checkStrategyNeedsRecord,
  checkTracking,
  type NamespacePolicy,
  type RecordStore,
  type ResolvedPolicy,
  resolvePolicy,
} from './policy.js'
import { policyDiff } from './policy-diff.js'
import type {
  FlushOptions,
  NamespaceTypes,
  TieredCacheOptions,
  TieredCacheStats,
  Untyped,
} from './tiered-cache-options.js'
import { UnknownOutcomes } from './unknown-outcomes.js'
import { reportError } from './util.js'

export type {
  FlushOptions,
  NamespacePolicies,
  NamespaceTypes,
  TieredCacheOptions,
  TieredCacheStats,
} from './tiered-cache-options.js'

/** A namespace set up in this cache: the public object and the calls only the cache makes. */
interface Registered {
  readonly namespace: TieredNamespace<unknown>
  readonly internals: NamespaceInternals
  /** The policy it was set up with, every default applied. */
  readonly policy: ResolvedPolicy<unknown>
}

/**
 * A multi-tier cache: L1 memory → L2 Redis → L3 PostgreSQL → loader, with per-namespace write
 * strategies, stampede protection, grace, refresh-ahead and an invalidation engine that reaches
 * every tier and, through the bus, every instance.
 */
// biome-ignore lint/suspicious/noExplicitAny: `TieredCache` alone must accept a cache of any namespace types (a function taking any cache); `N` is invariant, so no other default does
export class TieredCache<N extends object = any> {
  /** The options as given (their namespace types only matter to the public signatures). */
  readonly #options: TieredCacheOptions
  /** Every namespace set up, with the handle the cache keeps of it. */
  readonly #namespaces = new Map<string, Registered>()
  readonly #records = new Map<string, RecordStore<unknown>>()
  /** Namespaces set up by the cache itself, not yet asked for by the application. */
  readonly #implicit = new Set<string>()
  /** Implicit namespaces set up only to reach their tiers (their policy not checked yet). */
  readonly #adopted = new Set<string>()
  readonly #dispatch: InvalidationDispatch
  readonly #now: () => number
  readonly #ctx: NamespaceContext
  #queue: WriteQueue<QueuedWrite> | undefined
  #ownQueue = false
  #flusher: WriteBehindFlusher | undefined
  readonly #unsubscribe: (() => void) | undefined
  #closed = false
  readonly #fills = new BackgroundFills()
  readonly #outcomes = new UnknownOutcomes((id, error) =>
    reportError('tiered', id.split('\u0000')[0] ?? '', 'settle', error),
  )

  constructor(options: TieredCacheOptions<N> = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', 'must be an object')
    }
    for (const name of ['l1', 'l2', 'l3'] as const) {
      const tier = options[name]
      if (tier !== undefined && typeof tier?.namespace !== 'function') {
        throw new InvalidOptionError(
          name,
          'must be a cache tier (an object with a namespace method)',
        )
      }
    }
    for (const fn of ['now', 'random'] as const) {
      if (options[fn] !== undefined && typeof options[fn] !== 'function') {
        throw new InvalidOptionError(fn, 'must be a function')
      }
    }
    this.#options = options as TieredCacheOptions
    this.#now = options.now ?? Date.now
    const tags = new TagClock(
      options.l2?.namespace<number>(TAG_NAMESPACE, { defaultTtl: Infinity }),
    )
    const dispatch = new InvalidationDispatch({
      namespaces: this.#directory(),
      tags,
      bus: options.bus,
      outcomes: this.#outcomes,
      now: this.#now,
      config: options.config,
      policies: options.namespaces as Readonly<Record<string, AnyNamespacePolicy>>,
    })
    this.#dispatch = dispatch
    this.#queue = options.queue
    this.#ctx = {
      now: this.#now,
      random: options.random ?? Math.random,
      tags,
      lock: options.lock,
      queue: undefined,
      keyChanged: (namespace, key) => dispatch.keyChanged(namespace, key),
      invalidateKey: (namespace, key) => dispatch.invalidateKey(namespace, key),
      invalidate: (target) => this.invalidate(target),
      outcomes: this.#outcomes,
      fills: this.#fills,
      publish: (message) => dispatch.publish([message]),
      lifeUsed: (ms) => dispatch.lifeUsed(ms),
      assertOpen: () => {
        if (this.#closed) throw new ClosedError('tiered cache')
      },
    }
    if (options.queue !== undefined) this.#startFlusher(options.queue)
    this.#unsubscribe = dispatch.subscribe()
  }

  /**
   * The namespace `name`. Its policy comes from the config file's `strategies.<name>`, then
   * `options.namespaces[name]`, then `policy`. Asking again returns the same namespace; with a
   * `policy` that differs from the first one, it throws, naming each setting that differs.
   * @throws {InvalidKeyError} | {InvalidOptionError} | {InvalidConfigError}
   */
  namespace<V = unknown>(
    name: Untyped<N> extends true ? string : never,
    policy?: NamespacePolicy<V>,
  ): TieredNamespace<V>
  namespace<K extends keyof N & string>(
    name: K,
    policy?: NamespacePolicy<N[K]>,
  ): TieredNamespace<N[K]>
  namespace<V>(name: string, policy?: NamespacePolicy<V>): TieredNamespace<V> {
    const existing = this.#namespaces.get(name)
    if (
      existing !== undefined &&
      this.#implicit.has(name) &&
      (policy !== undefined || this.#adopted.has(name))
    ) {
      // set up implicitly (by an invalidation or the flusher) before the application asked; an
      // adopted one may have been relaxed to reach its tiers, so its policy is checked now
      const { namespace } = this.#create(name, policy)
      this.#implicit.delete(name)
      this.#adopted.delete(name)
      return namespace as TieredNamespace<V>
    }
    this.#implicit.delete(name)
    this.#adopted.delete(name)
    if (existing !== undefined) {
      if (policy !== undefined) this.#samePolicy(name, existing, policy)
      return existing.namespace as TieredNamespace<V>
    }
    return this.#create(name, policy).namespace as TieredNamespace<V>
  }

  /** Throws unless `policy` resolves to the policy namespace `name` was set up with. */
  #samePolicy<V>(name: string, existing: Registered, policy: NamespacePolicy<V>): void {
    const asked = resolvePolicy<V>(name, this.#options.config, this.#policyOf<V>(name), policy)
    const diff = policyDiff(existing.policy, asked as ResolvedPolicy<unknown>)
    if (diff.length === 0) return
    throw new InvalidOptionError(
      'policy',
      `namespace "${name}" is already set up with another policy (${diff.join('; ')}); ` +
        'ask for it without a policy, or with the same one',
    )
  }

  /** The policy `options.namespaces` gives namespace `name`. */
  #policyOf<V>(name: string): NamespacePolicy<V> | undefined {
    const policies = this.#options.namespaces as
      | Readonly<Record<string, NamespacePolicy<V> | undefined>>
      | undefined
    return policies !== undefined && Object.hasOwn(policies, name) ? policies[name] : undefined
  }

  /**
   * @param how `implicit`: for the flusher (also while closing); `adopt`: only to reach the tiers
   * of a namespace an invalidation names (a strategy that needs a record this instance lacks is
   * then ignored)
   */
  #create<V>(
    name: string,
    policy: NamespacePolicy<V> | undefined,
    how?: 'implicit' | 'adopt',
  ): Registered {
    if (this.#closed && how !== 'implicit') throw new ClosedError('tiered cache')
    validateNamespace(name)
    if (name === TAG_NAMESPACE) throw new InvalidKeyError(`namespace "${name}" is reserved`)
    const o = this.#options
    let p = resolvePolicy<V>(name, o.config, this.#policyOf<V>(name), policy)
    const asked = p
    const opts = { defaultTtl: p.ttl }
    const l1 = o.l1?.namespace<V>(name, opts)
    const l2 = o.l2?.namespace<V>(name, opts)
    const l3 = o.l3?.namespace<V>(name, { defaultTtl: Infinity })
    const record: RecordStore<V> | undefined =
      p.record === undefined ? l3 : p.record === false ? undefined : p.record
    const lower: CacheStore<V>[] = []
    const lowerLevels: ('l2' | 'l3')[] = []
    if (l2 !== undefined) {
      lower.push(l2)
      lowerLevels.push('l2')
    }
    if (l3 !== undefined && record !== l3) {
      lower.push(l3)
      lowerLevels.push('l3')
    }
    if (how === 'adopt' && p.strategy !== 'write_through' && record === undefined) {
      p = { ...p, strategy: 'write_through' }
    }
    checkStrategyNeedsRecord(name, p.strategy, record !== undefined)
    const tracked =
      how !== 'adopt' && checkTracking(name, o.tracking, p.strategy, record as RecordStore<unknown>)
    if (p.strategy === 'write_behind' && this.#queue === undefined) {
      this.#ownQueue = true
      this.#startFlusher(createMemoryWriteQueue<QueuedWrite>())
    }
    const { namespace, internals } = createNamespace<V>(
      name,
      p,
      { l1, lower, lowerLevels, record },
      { ...this.#ctx, queue: this.#queue, tracking: tracked ? o.tracking : undefined },
    )
    const registered: Registered = {
      namespace: namespace as TieredNamespace<unknown>,
      internals,
      policy: asked as ResolvedPolicy<unknown>,
    }
    this.#namespaces.set(name, registered)
    if (record !== undefined) this.#records.set(name, record as RecordStore<unknown>)
    return registered
  }

  /** A namespace the config or options know, set up on behalf of the flusher or an invalidation. */
  #implicitly(name: string): Registered | undefined {
    const known =
      Object.hasOwn(this.#options.config?.strategies ?? {}, name) ||
      Object.hasOwn(this.#options.namespaces ?? {}, name)
    if (!known) return undefined
    const ns = this.#create(name, undefined, 'implicit')
    this.#implicit.add(name)
    return ns
  }

  /** A namespace an invalidation names before the application used it: set up to reach its tiers. */
  #adopt(name: string): Registered {
    const ns = this.#create(name, undefined, 'adopt')
    this.#implicit.add(name)
    this.#adopted.add(name)
    return ns
  }

  /** The namespaces as the invalidation dispatch reaches them. */
  #directory(): Namespaces {
    return {
      find: (name) => this.#namespaces.get(name)?.internals,
      reach: (name) => (this.#namespaces.get(name) ?? this.#adopt(name)).internals,
      all: () => [...this.#namespaces].map(([name, ns]) => [name, ns.internals] as const),
    }
  }

  #startFlusher(queue: WriteQueue<QueuedWrite>): void {
    this.#queue = queue
    this.#flusher = new WriteBehindFlusher(
      queue,
      (namespace) => {
        const ns = this.#namespaces.get(namespace) ?? this.#implicitly(namespace)
        const record = this.#records.get(namespace)
        return record === undefined || ns === undefined
          ? undefined
          : {
              record,
              flushed: (key, version) => ns.internals.flushed(key, version),
              rejected: (key, version) => ns.internals.rejected(key, version),
              tracking: this.#options.tracking?.tracks(namespace)
                ? this.#options.tracking
                : undefined,
            }
      },
      this.#options.deadLetters,
      this.#options.writeBehind ?? {},
      this.#now,
    )
    if (this.#flusher.autoStart) this.#flusher.start()
  }

  /**
   * Invalidates keys, patterns, a whole namespace or tags in every cache tier of this instance,
   * in dependent namespaces (same keys and patterns), and in other instances' L1 through the bus.
   * The store of record keeps its data.
   * @throws {InvalidKeyError} for a malformed target, before anything is dropped
   */
  async invalidate(target: InvalidationTarget): Promise<void> {
    if (this.#closed) throw new ClosedError('tiered cache')
    await this.#dispatch.apply(validateTarget(target))
  }

  /**
   * Invalidates what the config's rules for `event` name (`invalidation.events.<event>`), filling
   * `{name}` placeholders from `params` (escaped inside patterns), as {@link invalidate} does.
   * @example await cache.invalidateByEvent('stat_updated', { entityId: 'actor:123' })
   * @throws {InvalidOptionError} for an unknown event or a missing parameter
   */
  async invalidateByEvent(
    event: string,
    params: Readonly<Record<string, string>> = {},
  ): Promise<void> {
    if (this.#closed) throw new ClosedError('tiered cache')
    const messages = expandEvent(this.#options.config?.invalidation, event, params)
    for (const m of messages) await this.#dispatch.apply(m)
  }

  /**
   * Resolves once the values loaders returned are in the shared tiers. A read that loads answers
   * as soon as the loader does, while its compare-and-set into L2 is still on the wire (reads of
   * the key meanwhile share its answer); await this where the next step expects another
   * instance to find the value in L2, as tests do. `close` waits for them too.
   */
  async settle(): Promise<void> {
    await this.#fills.settle()
  }

  /**
   * Persists every queued write-behind write now (this instance's consumer), returning how many.
   * @throws {TierUnavailableError} when the record keeps failing past the timeout
   */
  async flush(options: FlushOptions = {}): Promise<number> {
    const flusher = this.#flusher
    if (flusher === undefined) return 0
    const timeout = options.timeout ?? 30_000
    const wasRunning = flusher.autoStart && !this.#closed
    // The background loop finishes the batch it holds while the drain takes the rest: both are
    // done before this returns, and the loop starts again only once it has stopped.
    const stopped = flusher.stop()
    try {
      return await flusher.drain(this.#now() + timeout)
    } finally {
      await stopped
      if (wasRunning && !this.#closed) flusher.start()
    }
  }

  /** Counters per namespace and of the flusher. */
  stats(): TieredCacheStats {
    const namespaces: Record<string, NamespaceStats> = {}
    for (const [name, { namespace }] of this.#namespaces) namespaces[name] = namespace.stats()
    return { namespaces, writeBehind: this.#flusher?.stats() }
  }

  /**
   * Stops taking writes, persists queued write-behind writes (within the timeout) and leaves the
   * bus. Tiers, bus, lock and a queue you passed stay open: you created them, you close them.
   */
  async close(options: FlushOptions = {}): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#unsubscribe?.()
    await this.#fills.settle()
    this.#outcomes.close()
    if (this.#flusher !== undefined) {
      await this.#flusher.stop()
      try {
        await this.#flusher.drain(this.#now() + (options.timeout ?? 30_000))
      } finally {
        if (this.#ownQueue) await this.#queue?.close()
      }
    }
  }
}

/**
 * Creates a {@link TieredCache}. Give `N` (the value type of each namespace, by name) to type
 * `cache.namespace(name)` by its name; see {@link NamespaceTypes}.
 */
export function createTieredCache<N extends object = NamespaceTypes>(
  options: TieredCacheOptions<NoInfer<N>> = {},
): TieredCache<N> {
  return new TieredCache<N>(options)
}
