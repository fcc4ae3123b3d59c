import type { CacheStore, InvalidationMessage } from '@actor-cache/core'
import type { NamespaceParts } from './namespace-context.js'
import type { Origin } from './unflushed-writes.js'

/**
 * Invalidation inside this instance, as the cache dispatches it: drops what a message names from
 * L1 (and the negative cache, and what loads in flight would store), or from every cache tier of
 * the namespace; forgets everything local when the bus may have lost messages. The record keeps
 * its data. Other instances and dependent namespaces are the dispatcher's business.
 */
export class LocalInvalidation<V> {
  /** The namespace's parts this one works with. */
  readonly #ns: NamespaceParts<V>

  constructor(parts: NamespaceParts<V>) {
    this.#ns = parts
  }

  /** This instance's invalidation: drops what `message` names from L1 (and negative cache). */
  dropLocal(message: InvalidationMessage): void {
    this.#dropL1(message, { remote: false })
  }

  /**
   * Another instance's invalidation, from the bus: like {@link dropLocal}, and this instance's
   * unflushed writes of the keys stop being served. `sentAt` (the sender's clock) dates a tag
   * invalidation against those writes.
   */
  dropRemote(message: InvalidationMessage, sentAt = Number.POSITIVE_INFINITY): void {
    this.#dropL1(message, { remote: true, sentAt })
  }

  /** Drops what `message` names from every cache tier of this instance (not the record). */
  async dropTiers(message: InvalidationMessage): Promise<void> {
    const keys = message.keys ?? []
    const wide = message.all === true || (message.patterns?.length ?? 0) > 0
    const { caches, l1sync } = this.#ns.tiers
    this.#ns.guard.hold(keys)
    if (wide) this.#ns.guard.holdAll()
    try {
      this.dropLocal(message)
      const tiers = l1sync === undefined ? caches : caches.slice(1)
      for (const tier of tiers) {
        try {
          if (message.all) await tier.clear()
          if (keys.length > 0) await tier.deleteMany(keys)
          for (const pattern of message.patterns ?? []) await tier.deletePattern(pattern)
        } catch (error) {
          this.#ns.tiers.report(tier.tier, 'invalidate', error)
          // the drop may run late or not at all: do it again once the tier answers
          if (wide) this.#uncertainWide(tier, message)
          else for (const key of keys) this.#ns.tiers.uncertain(key)
        }
      }
      if (message.all && l1sync) await l1sync.clear()
    } finally {
      this.#ns.guard.release(keys)
      if (wide) this.#ns.guard.releaseAll()
    }
    // what a read copied into L1 while the lower tiers were being cleared goes too
    if (!message.all) this.dropLocal({ ...message, tags: undefined })
  }

  /** The bus may have lost messages: forget everything local. */
  async reset(): Promise<void> {
    this.#ns.guard.removedAll()
    this.#ns.negative.clear()
    // messages may have been lost: another instance may have written or deleted any key
    if (this.#ns.unflushed.size !== 0) {
      this.#ns.unflushed.hit({ all: true }, { remote: true, sentAt: Number.POSITIVE_INFINITY })
    }
    const l1 = this.#ns.tiers.l1
    if (l1 !== undefined) {
      try {
        await l1.clear()
      } catch (error) {
        this.#ns.tiers.report(l1.tier, 'clear', error)
      }
    }
  }

  #dropL1(message: InvalidationMessage, origin: Origin): void {
    if (message.all || message.patterns) {
      this.#ns.guard.removedAll()
      this.#ns.negative.clear()
    }
    for (const key of message.keys ?? []) {
      this.#ns.guard.removed(key)
      this.#ns.negative.forget(key)
    }
    if (message.tags) this.#ns.guard.removedAll()
    if (this.#ns.unflushed.size !== 0) this.#ns.unflushed.hit(message, origin)
    const l1 = this.#ns.tiers.l1sync
    if (l1 === undefined) return
    if (message.all) {
      void l1.clear().catch((error) => this.#ns.tiers.report('memory', 'clear', error))
      return
    }
    for (const key of message.keys ?? []) l1.deleteSync(key)
    for (const pattern of message.patterns ?? []) {
      void l1
        .deletePattern(pattern)
        .catch((error) => this.#ns.tiers.report('memory', 'deletePattern', error))
    }
  }

  /** Like the tier stack's `uncertain`, for an invalidation of patterns or the whole namespace. */
  #uncertainWide(tier: CacheStore<V>, message: InvalidationMessage): void {
    const { tags: _t, ...wide } = message
    this.#ns.ctx.outcomes.add(
      `${this.#ns.name}\u0000${tier.tier}\u0000${JSON.stringify(wide)}`,
      async () => {
        if (wide.all) await tier.clear()
        for (const pattern of wide.patterns ?? []) await tier.deletePattern(pattern)
        this.dropLocal(wide)
        await this.#ns.ctx.publish(wide)
      },
    )
  }
}
