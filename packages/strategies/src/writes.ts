import {
  type ChangeBuilder,
  type ChangeRecordingStore,
  type ChangeStamp,
  ConflictError,
  InvalidOptionError,
  measureValue,
  resolveSetOptions,
  type SetResult,
  validateKey,
  type WriteTracking,
} from '@actor-cache/core'
import { publishWrite, writeWatched } from './events.js'
import type { NamespaceParts } from './namespace-context.js'
import type { RecordStore } from './policy.js'
import type { WriteBehind } from './write-behind.js'
import type { WriteThrough } from './write-through.js'

/** Conflicts of one tracked write resolved by the tracking's policy, at most. */
const MAX_RESOLUTIONS = 8

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
  /** Who the write is for, logged with it in a tracked namespace. @default the tracker's context */
  userId?: string
  /** Which system makes the write, logged with it in a tracked namespace. @default the tracker's context */
  systemId?: string
}

/** Options of a tiered delete. */
export interface TieredDeleteOptions {
  /**
   * Delete only if the version of record is this one (`0` = absent, a no-op): `ConflictError`
   * otherwise. Tracked namespaces only (the check runs under the record's lock).
   */
  expectedVersion?: number
  /** Who the delete is for, logged with it in a tracked namespace. @default the tracker's context */
  userId?: string
  /** Which system makes the delete, logged with it in a tracked namespace. @default the tracker's context */
  systemId?: string
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
  /** In a tracked namespace: builds the write's change record inside the record's transaction. */
  readonly track?: ChangeBuilder | undefined
  /** In a tracked write-behind namespace: the change id and author the queued write carries. */
  readonly stamp?: ChangeStamp | undefined
}

/** The author a write or delete names, for its change record. */
function authorOf(options: TieredDeleteOptions): TieredDeleteOptions {
  return {
    ...(options.userId === undefined ? {} : { userId: options.userId }),
    ...(options.systemId === undefined ? {} : { systemId: options.systemId }),
  }
}

/**
 * The record's tracked write: the entity and its change record in one transaction. The result
 * is the record's version; nothing is written when the builder finds nothing to change. The
 * caller announces an applied one (see {@link announceLogged}) once the caches reflect it.
 */
export async function writeTracked<V>(
  record: unknown,
  key: string,
  write: Parameters<ChangeRecordingStore<V>['writeWithChange']>[1],
  track: ChangeBuilder,
): Promise<{ applied: boolean; version: number }> {
  const r = await (record as ChangeRecordingStore<V>).writeWithChange(key, write, track)
  return { applied: r.change !== undefined, version: r.version }
}

/**
 * Tells the tracking that the record committed change records (it wakes a change-stream relay).
 * Called once the caches reflect them, so a subscriber that reacts by reading the cache reads
 * the new state. What the hook throws is ignored: the writes are committed, and their callers
 * succeed.
 */
export function announceLogged(tracking: WriteTracking | undefined): void {
  try {
    tracking?.logged?.()
  } catch {
    // the hook's failure is not the write's
  }
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
    const call =
      this.#ns.ctx.tracking?.resolve !== undefined && options?.expectedVersion !== undefined
        ? this.#setResolving(key, value, options)
        : this.#set(key, value, options)
    if (!writeWatched()) return call
    return this.#watched('set', key, call)
  }

  /**
   * A tracked compare-and-set whose conflicts the tracking resolves by the namespace's policy:
   * each resolution is written as a new tracked write expecting the version found, at most
   * {@link MAX_RESOLUTIONS} times; then the last `ConflictError` reaches the caller.
   */
  async #setResolving(key: string, value: V, options: TieredSetOptions): Promise<SetResult> {
    const resolve = this.#ns.ctx.tracking?.resolve as NonNullable<WriteTracking['resolve']>
    let v = value
    let o = options
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#set(key, v, o)
      } catch (error) {
        const expectedVersion = o.expectedVersion
        if (!(error instanceof ConflictError) || expectedVersion === undefined) throw error
        if (attempt > MAX_RESOLUTIONS) throw error
        const conflict = { namespace: this.#ns.name, key, expectedVersion, value: v, attempt }
        const resolved = await resolve({ ...conflict, actualVersion: error.actualVersion })
        if (resolved === undefined) throw error
        v = resolved.value as V
        o = { ...o, expectedVersion: error.actualVersion }
      }
    }
  }

  delete(key: string, options: TieredDeleteOptions = {}): Promise<boolean> {
    if (!writeWatched()) return this.#delete(key, options)
    return this.#watched('delete', key, this.#delete(key, options))
  }

  /**
   * The change builder of a write or delete in a tracked namespace, or under write-behind the
   * stamp its queued write carries (checked before any I/O).
   */
  #track(
    key: string,
    write:
      | { kind: 'set'; value: V; options: TieredSetOptions }
      | { kind: 'delete'; options: TieredDeleteOptions },
  ): { build: ChangeBuilder } | { stamp: ChangeStamp } | undefined {
    const tracking = this.#ns.ctx.tracking
    const set = write.kind === 'set' ? write.options : undefined
    const expected = write.options.expectedVersion
    if (tracking === undefined) {
      if (write.kind === 'delete' && expected !== undefined) {
        throw new InvalidOptionError(
          'expectedVersion',
          `a delete with an expected version needs a tracked namespace ("${this.#ns.name}" is not)`,
        )
      }
      return undefined
    }
    if (expected !== undefined && (!Number.isSafeInteger(expected) || expected < 0)) {
      throw new InvalidOptionError(
        'expectedVersion',
        `must be an integer from 0, got ${String(expected)}`,
      )
    }
    if (set?.version !== undefined) {
      throw new InvalidOptionError(
        'version',
        `namespace "${this.#ns.name}" is tracked: its versions come from the store of record (use expectedVersion)`,
      )
    }
    const toTrack = {
      namespace: this.#ns.name,
      key,
      kind: write.kind,
      ...(write.kind === 'set' ? { value: write.value } : {}),
      ...(expected === undefined ? {} : { expectedVersion: expected }),
      ...authorOf(write.options),
    }
    if (this.#ns.policy.strategy === 'write_behind' && tracking.stamp !== undefined) {
      // the version is checked when it is claimed; the record is built at the flush
      return { stamp: tracking.stamp({ ...toTrack, expectedVersion: undefined }) }
    }
    return { build: tracking.prepare(toTrack) }
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
    const plan = this.#track(key, { kind: 'set', value, options })
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
    const w: Write<V> = {
      key,
      value,
      options,
      expiresAt,
      tags,
      createdAt,
      ...(plan === undefined
        ? {}
        : 'build' in plan
          ? { track: plan.build }
          : { stamp: plan.stamp }),
    }
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

  async #delete(key: string, options: TieredDeleteOptions): Promise<boolean> {
    this.#ns.ctx.assertOpen()
    validateKey(key, this.#ns.name)
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', `must be an object, got ${String(options)}`)
    }
    const plan = this.#track(key, { kind: 'delete', options })
    this.#ns.guard.removed(key)
    this.#ns.guard.hold([key])
    try {
      return await this.#deleteHeld(key, plan, options.expectedVersion)
    } finally {
      this.#ns.guard.release([key])
      // what a read copied into L1 while the tiers were being cleared goes too
      this.#ns.tiers.l1sync?.deleteSync(key)
      this.#ns.guard.removed(key)
    }
  }

  /** Write-around: the record takes the write; the key then leaves every cache tier. */
  async #writeAround(w: Write<V>): Promise<SetResult> {
    const { key, value, tags, track } = w
    const record = this.#ns.tiers.record as RecordStore<V>
    const result = await this.#ns.tiers.recordWrite(key, () =>
      track === undefined
        ? record.set(key, value, { ttl: Infinity, tags, ...versionOf(w.options) })
        : writeTracked(
            record,
            key,
            { kind: 'set', value, options: { ttl: Infinity, tags } },
            track,
          ),
    )
    try {
      this.#ns.guard.written(key)
      await this.#ns.ctx.invalidateKey(this.#ns.name, key)
    } finally {
      if (track !== undefined && result.applied) announceLogged(this.#ns.ctx.tracking)
    }
    return result
  }

  /** The delete while `key` is held; true when the record (or, without one, a cache) had it. */
  async #deleteHeld(
    key: string,
    plan: { build: ChangeBuilder } | { stamp: ChangeStamp } | undefined,
    expectedVersion: number | undefined,
  ): Promise<boolean> {
    let existed = false
    const { caches, l1sync, record } = this.#ns.tiers
    const queue = this.#ns.ctx.queue
    const track = plan !== undefined && 'build' in plan ? plan.build : undefined
    if (this.#ns.policy.strategy === 'write_behind' && queue !== undefined) {
      const stamp = plan !== undefined && 'stamp' in plan ? plan.stamp : undefined
      existed = await this.#behind.delete(key, queue, { stamp, expectedVersion })
    } else if (record !== undefined) {
      existed = await this.#ns.tiers.recordWrite(key, async () =>
        track === undefined
          ? record.delete(key)
          : (await writeTracked(record, key, { kind: 'delete' }, track)).applied,
      )
    }
    const logged = track !== undefined && existed
    try {
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
    } finally {
      if (logged) announceLogged(this.#ns.ctx.tracking)
    }
    return existed
  }
}
