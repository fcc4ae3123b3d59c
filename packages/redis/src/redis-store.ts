import {
  type CacheEntry,
  type CacheStore,
  type ClaimDeleteOptions,
  type ClaimResult,
  type ClaimSetOptions,
  type Codec,
  ConflictError,
  channels,
  escapeGlob,
  globLiteralPrefix,
  globTokensToRegExpSource,
  InvalidOptionError,
  MAX_EXPIRES_AT,
  parseGlob,
  resolveSetOptions,
  type SetManyItem,
  type SetOptions,
  type SetResult,
  type VersionFloor,
  type VersionHeadStore,
  validateKey,
  validateTtl,
} from '@actor-cache/core'
import type { Commander } from './connection.js'
import { EntryReader, ReadBatch } from './entry-reader.js'
import { encodeTail } from './envelope.js'
import type { RedisTier } from './redis-tier.js'
import { SET_TTL_SCRIPT } from './scripts.js'
import { groupBySlot } from './slot.js'
import { checkClaimOptions, VersionHeads } from './version-heads.js'
import { type PreparedWrite, runVersionedSet } from './versioned-set.js'

const TIER = 'redis'
const SCAN_COUNT = '1000'

/** The Redis store of one namespace. */
export class RedisStore<V = unknown> implements CacheStore<V>, VersionHeadStore<V> {
  readonly tier = TIER
  readonly namespace: string
  readonly #owner: RedisTier
  readonly #commander: Commander
  readonly #prefix: string
  readonly #defaultTtl: number
  readonly #codec: Codec
  readonly #reader: EntryReader
  readonly #heads: VersionHeads

  /** @internal Use {@link RedisTier.namespace}. */
  constructor(
    owner: RedisTier,
    commander: Commander,
    prefix: string,
    headPrefix: string,
    namespace: string,
    defaultTtl: number,
    codec: Codec,
  ) {
    this.#owner = owner
    this.#commander = commander
    this.#prefix = prefix
    this.namespace = namespace
    this.#defaultTtl = defaultTtl
    this.#codec = codec
    this.#reader = new EntryReader(commander, namespace, codec)
    this.#heads = new VersionHeads(commander, headPrefix, namespace)
  }

  #full(key: string): string {
    validateKey(key, this.namespace)
    return this.#prefix + key
  }

  async get(key: string): Promise<CacheEntry<V> | undefined> {
    const full = this.#full(key)
    const batch = new ReadBatch()
    const raw = await this.#owner._fetch(full)
    const entry = this.#reader.read<V>(key, full, raw, batch)
    if (batch.removals.length > 0) await Promise.all(batch.removals)
    return entry
  }

  async getMany(keys: readonly string[]): Promise<(CacheEntry<V> | undefined)[]> {
    const full = keys.map((k) => this.#full(k))
    const batch = new ReadBatch()
    const raws = await this.#owner._fetchMany(full)
    const entries = raws.map((raw, i) =>
      this.#reader.read<V>(keys[i] as string, full[i] as string, raw, batch),
    )
    if (batch.removals.length > 0) await Promise.all(batch.removals)
    return entries
  }

  async set(key: string, value: V, options?: SetOptions | number): Promise<SetResult> {
    const prepared = this.#prepare(key, value, options)
    return this.#write(prepared)
  }

  async setMany(items: readonly SetManyItem<V>[]): Promise<SetResult[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
    const prepared = items.map((item) => this.#prepare(item.key, item.value, item))
    // Issued in one tick: node-redis writes them as one pipeline, one round trip. Scripts on the
    // same key run in order, so repeated keys get successive versions.
    return Promise.all(prepared.map((p) => this.#write(p)))
  }

  /**
   * Claims the next version of `key` after its version head and stores `value` at it, in one
   * script (see {@link VersionHeadStore}). Heads live under `<prefix>:#head:<namespace>:`.
   */
  async claimSet(key: string, value: V, options: ClaimSetOptions): Promise<ClaimResult> {
    checkClaimOptions(options)
    const { floor, headTtl } = options
    const p = this.#prepare(key, value, {
      expiresAt: options.expiresAt,
      createdAt: options.createdAt,
      tags: options.tags,
      ...(options.expectedVersion === undefined
        ? {}
        : { expectedVersion: options.expectedVersion }),
      ...(options.version === undefined ? {} : { version: options.version }),
    })
    const r = await this.#heads.set({ ...p, floor, headTtl })
    if (r.needsFloor !== true && channels.set.hasSubscribers) {
      channels.set.publish({
        tier: TIER,
        namespace: this.namespace,
        key,
        durationMs: 0,
        applied: r.applied,
      })
    }
    return r
  }

  /** Claims the next version of `key` for a delete: the value goes, the head stays. */
  async claimDelete(key: string, options: ClaimDeleteOptions): Promise<ClaimResult> {
    const full = this.#full(key)
    const r = await this.#heads.delete(key, full, options)
    if (r.needsFloor !== true) this.#recordDelete(key, r.previous?.exists === true ? 1 : 0)
    return r
  }

  /** Takes back a claim whose write was refused, if no later claim moved the head. */
  releaseClaim(key: string, version: number, previous: VersionFloor): Promise<boolean> {
    return this.#heads.release(key, this.#full(key), version, previous)
  }

  #prepare(key: string, value: V, options: SetOptions | number | undefined): PreparedWrite {
    const full = this.#full(key)
    const opts = resolveSetOptions(options, this.#defaultTtl, Date.now())
    const tail = encodeTail(this.#codec, value, opts.createdAt, opts.expiresAt, opts.tags)
    let mode: 'auto' | 'version' | 'cas' = 'auto'
    let n = 0
    if (opts.expectedVersion !== undefined) {
      mode = 'cas'
      n = opts.expectedVersion
    } else if (opts.version !== undefined) {
      mode = 'version'
      n = opts.version
    }
    return {
      key,
      full,
      mode,
      n,
      tail,
      pxat: opts.expiresAt === null ? '' : String(Math.max(1, opts.expiresAt)),
    }
  }

  async #write(p: PreparedWrite): Promise<SetResult> {
    const t0 = performance.now()
    const [status, shown] = await runVersionedSet(this.#commander, p)
    const version = Number(shown)
    if (status === -1) {
      throw new ConflictError(p.n, version, { tier: TIER, namespace: this.namespace, key: p.key })
    }
    if (status === -2) {
      throw new InvalidOptionError(
        'version',
        `${this.namespace}:${p.key} is at the largest safe version`,
        {
          tier: TIER,
          namespace: this.namespace,
          key: p.key,
        },
      )
    }
    if (channels.set.hasSubscribers) {
      channels.set.publish({
        tier: TIER,
        namespace: this.namespace,
        key: p.key,
        durationMs: t0 === 0 ? 0 : performance.now() - t0,
        applied: status === 1,
      })
    }
    return { applied: status === 1, version }
  }

  async delete(key: string): Promise<boolean> {
    const full = this.#full(key)
    const n = await this.#commander.send<number>(['UNLINK', full], full)
    this.#recordDelete(key, n)
    return n > 0
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    const full = keys.map((k) => this.#full(k))
    const n = await this.#unlink(full)
    this.#recordDelete(undefined, n)
    return n
  }

  async deletePattern(pattern: string): Promise<number> {
    const tokens = parseGlob(pattern)
    const re = new RegExp(globTokensToRegExpSource(tokens), 'su')
    // SCAN narrows by the literal prefix; the exact match (code points, classes) is ours.
    const match = `${escapeGlob(this.#prefix + globLiteralPrefix(tokens))}*`
    const n = await this.#scanDelete(match, (key) => re.test(key))
    this.#recordDelete(undefined, n)
    return n
  }

  async clear(): Promise<number> {
    const n = await this.#scanDelete(`${escapeGlob(this.#prefix)}*`, () => true)
    this.#recordDelete(undefined, n)
    return n
  }

  async exists(key: string): Promise<boolean> {
    const full = this.#full(key)
    return (await this.#commander.send<number>(['EXISTS', full], full, true)) > 0
  }

  async getTTL(key: string): Promise<number | undefined> {
    const full = this.#full(key)
    const ms = await this.#commander.send<number>(['PTTL', full], full, true)
    if (ms === -2) return undefined
    return ms === -1 ? Infinity : ms
  }

  async setTTL(key: string, ttl: number): Promise<boolean> {
    const full = this.#full(key)
    validateTtl(ttl)
    const at = ttl === Infinity ? null : Date.now() + Math.ceil(ttl)
    const pxat = at === null || at > MAX_EXPIRES_AT ? '' : String(at)
    return (await SET_TTL_SCRIPT.run<number>(this.#commander, [full], [pxat])) === 1
  }

  async #unlink(full: readonly string[]): Promise<number> {
    if (full.length === 0) return 0
    const groups = this.#commander.cluster ? groupBySlot(full, (k) => k) : [full]
    const counts = await Promise.all(
      groups.map((g) => this.#commander.send<number>(['UNLINK', ...g], g[0])),
    )
    return counts.reduce((a, b) => a + b, 0)
  }

  /** SCAN every master for `match`, UNLINK the keys whose namespace-relative part passes `keep`. */
  async #scanDelete(match: string, keep: (key: string) => boolean): Promise<number> {
    const nodes = await this.#commander.nodes()
    let total = 0
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await this.#commander.sendTo<[string, string[]]>(node, [
          'SCAN',
          cursor,
          'MATCH',
          match,
          'COUNT',
          SCAN_COUNT,
        ])
        cursor = String(next)
        const doomed = keys.filter(
          (k) => k.startsWith(this.#prefix) && keep(k.slice(this.#prefix.length)),
        )
        if (doomed.length > 0) {
          const groups = this.#commander.cluster ? groupBySlot(doomed, (k) => k) : [doomed]
          for (const g of groups)
            total += await this.#commander.sendTo<number>(node, ['UNLINK', ...g])
        }
      } while (cursor !== '0')
    }
    return total
  }

  #recordDelete(key: string | undefined, count: number): void {
    if (count > 0 && channels.delete.hasSubscribers) {
      channels.delete.publish({
        tier: TIER,
        namespace: this.namespace,
        ...(key === undefined ? {} : { key }),
        count,
        durationMs: 0,
      })
    }
  }
}
