import {
  type CacheTier,
  type Codec,
  defaultCodec,
  InvalidOptionError,
  type NamespaceOptions,
  resolveNamespace,
  validateTtl,
} from '@actor-cache/core'
import {
  type Commander,
  type RedisComponentOptions,
  resolveComponentOptions,
} from './connection.js'
import { RedisStore } from './redis-store.js'
import { groupBySlot } from './slot.js'

const TIER = 'redis'

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions extends RedisComponentOptions {
  /** TTL in ms for writes that give none; `Infinity` for none. @default Infinity */
  defaultTtl?: number
  /** Codec for namespaces that do not set their own. @default defaultCodec (JSON) */
  codec?: Codec
  /**
   * Coalesce the `get`s issued in one tick into one `MGET` per slot: many concurrent reads cost
   * one round trip and one command. @default true
   */
  coalesce?: boolean
}

interface Waiter {
  key: string
  resolve(raw: string | null): void
  reject(error: unknown): void
}

/**
 * The L2 tier: entries as `<prefix>:<namespace>:<key>` strings holding the envelope, versioned
 * writes and compare-and-set in Lua, batches in one round trip, namespace clears and pattern
 * deletes by SCAN + UNLINK. Works with a single server or a Cluster.
 */
export class RedisTier implements CacheTier {
  readonly tier = TIER
  readonly #commander: Commander
  readonly #prefix: string
  readonly #defaultTtl: number
  readonly #codec: Codec
  readonly #coalesce: boolean
  #pending: Waiter[] = []
  #scheduled = false

  constructor(options: RedisStoreOptions) {
    const resolved = resolveComponentOptions(options, TIER)
    this.#commander = resolved.commander
    this.#prefix = resolved.prefix
    this.#defaultTtl = validateTtl(options.defaultTtl ?? Infinity, 'defaultTtl')
    this.#codec = options.codec ?? defaultCodec
    if (typeof this.#codec?.encode !== 'function' || typeof this.#codec.decode !== 'function') {
      throw new InvalidOptionError('codec', 'must have encode and decode functions')
    }
    this.#coalesce = options.coalesce ?? true
  }

  /** Commands sent to Redis so far. */
  get commandsSent(): number {
    return this.#commander.sent
  }

  /** State of the circuit breaker. */
  get breakerState(): 'closed' | 'open' | 'half-open' {
    return this.#commander.breaker.state
  }

  namespace<V = unknown>(name: string, options: NamespaceOptions = {}): RedisStore<V> {
    const ttl = resolveNamespace(name, options, this.#defaultTtl)
    return new RedisStore<V>(
      this,
      this.#commander,
      `${this.#prefix}:${name}:`,
      `${this.#prefix}:#head:${name}:`,
      name,
      ttl,
      options.codec ?? this.#codec,
    )
  }

  /** The client is the caller's: closing the tier does not close it. */
  async close(): Promise<void> {}

  /**
   * @internal Fetches one raw value. The first read of a tick goes out at once (a lone read pays
   * no batching delay); the reads that follow in the same tick are gathered into one MGET.
   */
  _fetch(fullKey: string): Promise<string | null> {
    if (!this.#coalesce) {
      return this.#commander
        .send<(string | null)[]>(['MGET', fullKey], fullKey, true)
        .then((v) => v[0] ?? null)
    }
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(() => this.#flush())
      // MGET, not GET: a key of another type reads as a miss either way
      return this.#commander
        .send<(string | null)[]>(['MGET', fullKey], fullKey, true)
        .then((v) => v[0] ?? null)
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ key: fullKey, resolve, reject })
    })
  }

  /** @internal Raw values of many keys, one MGET per slot, in input order. */
  async _fetchMany(fullKeys: readonly string[]): Promise<(string | null)[]> {
    if (fullKeys.length === 0) return []
    if (!this.#commander.cluster) {
      return this.#commander.send<(string | null)[]>(['MGET', ...fullKeys], fullKeys[0], true)
    }
    const indexed = fullKeys.map((key, i) => ({ key, i }))
    const groups = groupBySlot(indexed, (x) => x.key)
    const out = new Array<string | null>(fullKeys.length)
    await Promise.all(
      groups.map(async (group) => {
        const keys = group.map((x) => x.key)
        const values = await this.#commander.send<(string | null)[]>(
          ['MGET', ...keys],
          keys[0],
          true,
        )
        group.forEach((x, j) => {
          out[x.i] = values[j] ?? null
        })
      }),
    )
    return out
  }

  #flush(): void {
    const batch = this.#pending
    this.#pending = []
    this.#scheduled = false
    if (batch.length === 0) return
    const unique = [...new Set(batch.map((w) => w.key))]
    this._fetchMany(unique).then(
      (values) => {
        const byKey = new Map(unique.map((k, i) => [k, values[i] ?? null]))
        for (const w of batch) w.resolve(byKey.get(w.key) ?? null)
      },
      (error: unknown) => {
        for (const w of batch) w.reject(error)
      },
    )
  }
}

/**
 * Creates the L2 Redis tier over a connected node-redis client or cluster client.
 * @example
 * const l2 = createRedisStore({ client: await connectRedis(config.redis) })
 * const actors = l2.namespace<PrimaryCore>('primary_core')
 * @throws {InvalidOptionError} naming the option and value
 */
export function createRedisStore(options: RedisStoreOptions): RedisTier {
  return new RedisTier(options)
}
