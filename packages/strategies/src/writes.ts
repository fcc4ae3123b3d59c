import {
  InvalidOptionError,
  measureValue,
  resolveSetOptions,
  type SetResult,
  validateKey,
} from '@actor-cache/core'
import { publishWrite, writeWatched } from './events.js'
import type { NamespaceParts } from './namespace-context.js'
import type { RecordStore } from './policy.js'
import type { WriteBehind } from './write-behind.js'
import type { WriteThrough } from './write-through.js'

/** Options of a tiered write. */
export interface TieredSetOptions {
  /** Life of the cached copies in ms (`Infinity` = until invalidated). @default the namespace's ttl, jittered */
  ttl?: number
  /** Tags for group invalidation. */
  tags?: readonly string[]
  /** Explicit version: the write applies only where no newer version is stored. */
  version?: number
  /** Compare-and-set against the version of record (`0` = absent): `ConflictError` on mismatch. */
  expectedVersion?: number
}

/** A write, checked and dated, as a strategy carries it out. */
export interface Write<V> {
  readonly key: string
  readonly value: V
  readonly options: TieredSetOptions
  /** Physical expiry of the cached copies. */
  readonly expiresAt: number | null
  readonly tags: readonly string[]
  /** Creation time of the cached copies: after every invalidation of their tags seen. */
  readonly createdAt: number
}

/** The versioning a write asks the record for (`expectedVersion` wins over `version`). */
export function versionOf(options: TieredSetOptions): {
  version?: number
  expectedVersion?: number
} {
  if (options.expectedVersion !== undefined) return { expectedVersion: options.expectedVersion }
  if (options.version !== undefined) return { version: options.version }
  return {}
}

/**
 * Writes and deletes of one namespace: checks them before any I/O, hands them to the namespace's
 * strategy (write-through, write-behind, write-around), and makes loads begun before them drop
 * their results; then other instances and dependent namespaces drop the key.
 */
export class Writes<V> {
  /** The namespace's parts this one works with. */
  readonly #ns: NamespaceParts<V>
  readonly #through: WriteThrough<V>
  readonly #behind: WriteBehind<V>

  constructor(
    parts: NamespaceParts<V>,
    strategies: { through: WriteThrough<V>; behind: WriteBehind<V> },
  ) {
    this.#ns = parts
    this.#through = strategies.through
    this.#behind = strategies.behind
  }

  set(key: string, value: V, options: TieredSetOptions = {}): Promise<SetResult> {
    if (!writeWatched()) return this.#set(key, value, options)
    return this.#watched('set', key, this.#set(key, value, options))
  }

  delete(key: string): Promise<boolean> {
    if (!writeWatched()) return this.#delete(key)
    return this.#watched('delete', key, this.#delete(key))
  }

  /** Publishes how a write or delete of `key` ended (someone listens to write events). */
  async #watched<R extends SetResult | boolean>(
    operation: 'set' | 'delete',
    key: string,
    call: Promise<R>,
  ): Promise<R> {
    const started = this.#ns.ctx.now()
    const event = { namespace: this.#ns.name, key, operation, strategy: this.#ns.policy.strategy }
    try {
      const r = await call
      const applied = typeof r === 'boolean' || r.applied
      publishWrite({
        ...event,
        durationMs: this.#ns.ctx.now() - started,
        outcome: applied ? 'applied' : 'ignored',
        ...(typeof r === 'boolean' ? {} : { version: r.version }),
      })
      return r
    } catch (error) {
      publishWrite({ ...event, durationMs: this.#ns.ctx.now() - started, outcome: 'error', error })
      throw error
    }
  }

  async #set(key: string, value: V, options: TieredSetOptions): Promise<SetResult> {
    this.#ns.ctx.assertOpen()
    validateKey(key, this.#ns.name)
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', `must be an object, got ${String(options)}`)
    }
    if (this.#ns.policy.checkValues) measureValue(value) // throws SerializationError before any I/O
    const clock = this.#ns.ctx.now()
    // validates ttl, version, expectedVersion and tags before any I/O
    const checked = resolveSetOptions({ ...options }, this.#ns.policy.ttl, clock)
    const expiresAt = this.#ns.freshness.expiry(clock, options.ttl)
    if (options.ttl !== undefined) this.#ns.ctx.lifeUsed(options.ttl + this.#ns.policy.grace)
    const tags = checked.tags
    if (tags.length > 0) {
      // order this write after invalidations of its tags other instances made (times in L2)
      await this.#ns.ctx.tags
        .ensure(tags)
        .catch((error) => this.#ns.tiers.report('tags', 'get', error, key))
    }
    const createdAt = this.#ns.ctx.tags.created(clock, tags) // after every invalidation of its tags seen
    const w: Write<V> = { key, value, options, expiresAt, tags, createdAt }
    this.#ns.guard.written(key)
    this.#ns.negative.forget(key)
    let result: SetResult
    switch (this.#ns.policy.strategy) {
      case 'write_behind':
        result = await this.#behind.write(w)
        break
      case 'write_around':
        return this.#writeAround(w)
      default:
        result = await this.#through.write(w)
    }
    this.#ns.guard.written(key)
    if (result.applied) await this.#ns.ctx.keyChanged(this.#ns.name, key)
    return result
  }

  async #delete(key: string): Promise<boolean> {
    this.#ns.ctx.assertOpen()
    validateKey(key, this.#ns.name)
    this.#ns.guard.removed(key)
    this.#ns.guard.hold([key])
    try {
      return await this.#deleteHeld(key)
    } finally {
      this.#ns.guard.release([key])
      // what a read copied into L1 while the tiers were being cleared goes too
      this.#ns.tiers.l1sync?.deleteSync(key)
      this.#ns.guard.removed(key)
    }
  }

  /** Write-around: the record takes the write; the key then leaves every cache tier. */
  async #writeAround(w: Write<V>): Promise<SetResult> {
    const { key, value, tags } = w
    const record = this.#ns.tiers.record as RecordStore<V>
    const result = await this.#ns.tiers.recordWrite(key, () =>
      record.set(key, value, { ttl: Infinity, tags, ...versionOf(w.options) }),
    )
    this.#ns.guard.written(key)
    await this.#ns.ctx.invalidateKey(this.#ns.name, key)
    return result
  }

  /** The delete while `key` is held; true when the record (or, without one, a cache) had it. */
  async #deleteHeld(key: string): Promise<boolean> {
    let existed = false
    const { caches, l1sync, record } = this.#ns.tiers
    const queue = this.#ns.ctx.queue
    if (this.#ns.policy.strategy === 'write_behind' && queue !== undefined) {
      existed = await this.#behind.delete(key, queue)
    } else if (record !== undefined) {
      existed = await this.#ns.tiers.recordWrite(key, () => record.delete(key))
    }
    for (const tier of caches) {
      try {
        const removed = tier === l1sync ? l1sync.deleteSync(key) : await tier.delete(key)
        if (record === undefined) existed ||= removed
      } catch (error) {
        this.#ns.tiers.report(tier.tier, 'delete', error, key)
        this.#ns.tiers.uncertain(key)
      }
    }
    await this.#ns.ctx.keyChanged(this.#ns.name, key)
    return existed
  }
}
