import type {
  CacheConfig,
  DeliveredInvalidation,
  InvalidationBus,
  InvalidationMessage,
} from '@actor-cache/core'
import { publishInvalidate } from './events.js'
import { dependents, type TagClock } from './invalidation.js'
import type { NamespaceInternals } from './namespace-context.js'
import type { AnyNamespacePolicy } from './policy.js'
import type { UnknownOutcomes } from './unknown-outcomes.js'
import { reportError } from './util.js'

/** What {@link InvalidationDispatch.keyChanged} answers when there is nobody to tell. */
const DONE: Promise<void> = Promise.resolve()

/** How the dispatcher reaches the namespaces of this instance. */
export interface Namespaces {
  /** The namespace's internals, when this instance has set it up. */
  find(name: string): NamespaceInternals | undefined
  /** The namespace's internals, set up just to reach its tiers when this instance lacks it. */
  reach(name: string): NamespaceInternals
  /** Every namespace set up, by name. */
  all(): Iterable<readonly [string, NamespaceInternals]>
}

/** What {@link InvalidationDispatch} is built from. */
export interface DispatchOptions {
  readonly namespaces: Namespaces
  readonly tags: TagClock
  readonly bus: InvalidationBus | undefined
  readonly outcomes: UnknownOutcomes
  readonly now: () => number
  /** The config file and the policies in code: dependencies, and how long tag times are kept. */
  readonly config: CacheConfig | undefined
  readonly policies: Readonly<Record<string, AnyNamespacePolicy>> | undefined
}

/**
 * Where an invalidation goes. One made here (a call, an event rule, a write of a key) reaches the
 * namespace's cache tiers, its dependents' (transitively) and, through the bus, other instances'
 * L1; a tag invalidation is dated and its time stored in L2 for instances that miss the message.
 * One from another instance (the bus) reaches this instance's L1; a bus reset (messages may be
 * lost) empties every L1 namespace. A publish or tag store that fails is retried once the bus or
 * L2 answers again.
 */
export class InvalidationDispatch {
  readonly #namespaces: Namespaces
  readonly #dependents: Map<string, string[]>
  readonly #tags: TagClock
  readonly #bus: InvalidationBus | undefined
  readonly #outcomes: UnknownOutcomes
  readonly #now: () => number
  readonly #config: CacheConfig | undefined
  readonly #policies: Readonly<Record<string, AnyNamespacePolicy>> | undefined
  /** Longest physical life (TTL + grace) given to a cached entry so far, in ms. */
  #maxLife = 300_000

  constructor(options: DispatchOptions) {
    this.#namespaces = options.namespaces
    this.#dependents = dependents(options.config?.invalidation)
    this.#tags = options.tags
    this.#bus = options.bus
    this.#outcomes = options.outcomes
    this.#now = options.now
    this.#config = options.config
    this.#policies = options.policies
  }

  /** Takes other instances' invalidations from the bus; returns how to stop. */
  subscribe(): (() => void) | undefined {
    return this.#bus?.subscribe({
      onInvalidate: (message) => this.#fromBus(message),
      onReset: () => this.#reset(),
    })
  }

  /** An invalidation made in this instance: its tiers, dependents, then other instances. */
  async apply(message: InvalidationMessage): Promise<void> {
    publishInvalidate(message, 'local')
    const targets: InvalidationMessage[] = []
    if (message.namespace !== undefined && (message.all || message.keys || message.patterns)) {
      const { tags: _t, ...rest } = message
      targets.push(rest)
      for (const dep of this.#dependents.get(message.namespace) ?? [])
        targets.push({ ...rest, namespace: dep })
    }
    for (const t of targets) await this.#namespaces.reach(t.namespace as string).dropTiers(t)
    if (message.tags !== undefined) {
      const at = this.#now()
      const mark = (): Promise<void> =>
        this.#tags.markShared(message.tags ?? [], at, this.#tagKeep())
      try {
        await mark()
      } catch (error) {
        reportError('tags', '', 'invalidate', error)
        // instances that read the time from L2 (a new one, one that missed the message) need it
        this.#outcomes.add(`tags\u0000${JSON.stringify(message.tags)}\u0000${at}`, mark)
      }
      for (const [, ns] of this.#namespaces.all()) ns.dropLocal({ tags: message.tags })
      targets.push({ tags: message.tags })
    }
    await this.publish(targets)
  }

  /** After a write of `key` (or new life for it): other instances drop it, dependents too. */
  keyChanged(namespace: string, key: string): Promise<void> {
    // nobody to tell (no bus, no dependent namespace): every write of such a namespace ends here
    if (this.#bus === undefined && !this.#dependents.has(namespace)) return DONE
    return this.#keyChanged(namespace, key)
  }

  async #keyChanged(namespace: string, key: string): Promise<void> {
    const targets: InvalidationMessage[] = [{ namespace, keys: [key] }]
    for (const dep of this.#dependents.get(namespace) ?? []) {
      const t = { namespace: dep, keys: [key] }
      targets.push(t)
      await this.#namespaces.reach(dep).dropTiers(t)
    }
    await this.publish(targets)
  }

  /** Like {@link keyChanged}, and the namespace's own cache tiers drop the key first. */
  async invalidateKey(namespace: string, key: string): Promise<void> {
    await this.#namespaces.find(namespace)?.dropTiers({ namespace, keys: [key] })
    await this.keyChanged(namespace, key)
  }

  /** Sends `messages` to other instances; one that fails is sent again once the bus answers. */
  async publish(messages: InvalidationMessage[]): Promise<void> {
    const bus = this.#bus
    if (bus === undefined) return
    for (const m of messages) {
      try {
        await bus.publish(m)
      } catch (error) {
        reportError('bus', m.namespace ?? '', 'publish', error)
        // the message may be lost (or sent late): send it again once the bus answers
        this.#outcomes.add(`bus\u0000${JSON.stringify(m)}`, () => bus.publish(m))
      }
    }
  }

  /** A cached entry was given a physical life of `ms` (TTL + grace): tag times must outlive it. */
  lifeUsed(ms: number): void {
    if (ms > this.#maxLife) this.#maxLife = ms
  }

  #fromBus(message: DeliveredInvalidation): void {
    publishInvalidate(message, 'remote')
    if (message.namespace !== undefined)
      this.#namespaces.find(message.namespace)?.dropRemote(message)
    if (message.tags !== undefined) {
      // the sender's time (as it stored in L2), not the arrival: a write made here after the
      // invalidation and before its message arrived stays valid
      this.#tags.markRemote(message.tags, Math.min(message.sentAt, this.#now()))
      for (const [, ns] of this.#namespaces.all()) {
        ns.dropRemote({ tags: message.tags }, message.sentAt)
      }
    }
  }

  #reset(): void {
    this.#tags.reset(this.#now())
    for (const [name, ns] of this.#namespaces.all()) {
      ns.reset().catch((error) => reportError('bus', name, 'reset', error))
    }
  }

  /**
   * How long a tag invalidation time must be kept: the longest life an entry may have, by this
   * instance's config and options, or was given here.
   */
  #tagKeep(): number {
    // every namespace the config or options know may hold tagged entries in L2, used here or not
    let keep = this.#maxLife
    for (const s of Object.values(this.#config?.strategies ?? {})) {
      keep = Math.max(keep, s.ttl + s.grace)
    }
    for (const n of Object.values(this.#policies ?? {})) {
      keep = Math.max(keep, (n?.ttl ?? 0) + (n?.grace ?? 0))
    }
    return keep
  }
}
