import {
  type CacheTier,
  type Codec,
  defaultCodec,
  InvalidOptionError,
  jsonSerializer,
  type NamespaceOptions,
  resolveNamespace,
  type Serializer,
  validateTtl,
} from '@actor-cache/core'
import { directQueries } from './direct-pool.js'
import { PrismaStore } from './prisma-store.js'
import { guarded, type PrismaLike, type PrismaTransaction } from './sql.js'
import { TIER } from './store-scope.js'

/** Options of {@link createPrismaStore}. */
export interface PrismaStoreOptions {
  /** A PrismaClient (any generated client, with `@prisma/adapter-pg` or `pglite-prisma-adapter`). */
  prisma: PrismaLike
  /** TTL in ms for writes that give none; `Infinity` for none. @default Infinity */
  defaultTtl?: number
  /** Codec for namespaces that do not set their own. @default defaultCodec (JSON) */
  codec?: Codec
  /** Longest any operation may take before it fails with `TierUnavailableError`, in ms. @default 5000 */
  timeout?: number
  /**
   * How long a versioned delete's tombstone keeps its version, in ms: writes with older versions
   * arriving within this time are ignored. Make it longer than a write can wait in a write-behind
   * queue. @default 604_800_000 (7 days)
   */
  tombstoneTtl?: number
  /**
   * Writes the old and new values of the change records that tracked writes
   * (`writeWithChange`) and `setManyWithChanges` append to `ac_state_changes`. Give it the
   * serializer of the change log that reads them back (`createPrismaChangeLog({ serializer })`),
   * e.g. `encryptedSerializer` of `@actor-cache/security` to keep values out of the log in clear.
   * @default jsonSerializer
   */
  changeSerializer?: Serializer
}

/**
 * The L3 tier on PostgreSQL (or PGlite) through Prisma raw SQL: table `ac_cache_entries`
 * keyed by (namespace, key), versioned upserts where an older version never overwrites a newer
 * one, batch upserts in one statement, and pattern deletes with a regular expression.
 * Expired rows are never returned; {@link PrismaTier.prune} removes them in bounded batches.
 */
export class PrismaTier implements CacheTier {
  readonly tier = TIER
  readonly #prisma: PrismaLike
  readonly #defaultTtl: number
  readonly #codec: Codec
  readonly #timeout: number
  /** @internal */
  readonly _tombstoneTtl: number
  /** @internal The serializer of change records' values. */
  readonly _changeSerializer: Serializer

  constructor(options: PrismaStoreOptions) {
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionError('options', 'must be an object')
    if (typeof options.prisma?.$queryRawUnsafe !== 'function') {
      throw new InvalidOptionError('prisma', 'must be a PrismaClient')
    }
    this.#prisma = options.prisma
    this.#defaultTtl = validateTtl(options.defaultTtl ?? Infinity, 'defaultTtl')
    this.#codec = options.codec ?? defaultCodec
    this.#timeout = options.timeout ?? 5000
    if (!Number.isSafeInteger(this.#timeout) || this.#timeout < 1) {
      throw new InvalidOptionError(
        'timeout',
        `must be a positive integer number of ms, got ${String(options.timeout)}`,
      )
    }
    this._tombstoneTtl = options.tombstoneTtl ?? 604_800_000
    if (!Number.isSafeInteger(this._tombstoneTtl) || this._tombstoneTtl < 1) {
      throw new InvalidOptionError(
        'tombstoneTtl',
        `must be a positive integer number of ms, got ${String(options.tombstoneTtl)}`,
      )
    }
    this._changeSerializer = options.changeSerializer ?? jsonSerializer
    const cs = this._changeSerializer as Partial<Serializer> | null
    if (typeof cs?.serialize !== 'function' || typeof cs.deserialize !== 'function') {
      throw new InvalidOptionError(
        'changeSerializer',
        'must be a Serializer with serialize and deserialize functions',
      )
    }
  }

  namespace<V = unknown>(name: string, options: NamespaceOptions = {}): PrismaStore<V> {
    const ttl = resolveNamespace(name, options, this.#defaultTtl)
    return new PrismaStore<V>(this, name, ttl, options.codec ?? this.#codec)
  }

  /**
   * Deletes expired rows, at most `batchSize` per statement, until none is left or `maxBatches`
   * ran; returns how many were deleted.
   */
  async prune(options: { batchSize?: number; maxBatches?: number } = {}): Promise<number> {
    const batchSize = options.batchSize ?? 1000
    const maxBatches = options.maxBatches ?? 100
    let total = 0
    for (let i = 0; i < maxBatches; i++) {
      const n = await this._run('prune', (db) =>
        db.$executeRawUnsafe(
          `DELETE FROM ac_cache_entries WHERE (namespace, key) IN (
             SELECT namespace, key FROM ac_cache_entries WHERE expires_at <= $1 LIMIT $2)`,
          new Date(),
          batchSize,
        ),
      )
      total += n
      if (n < batchSize) break
    }
    return total
  }

  /** The client is the caller's: closing the tier does not disconnect it. */
  async close(): Promise<void> {}

  /** @internal */
  _run<T>(operation: string, fn: (db: PrismaLike) => Promise<T>): Promise<T> {
    return guarded(this.#timeout, operation, () => fn(this.#prisma))
  }

  /**
   * @internal Like {@link _run}, for statements of fixed text (a handful per store: single-row
   * reads and writes, deletes): on a client of `connectPostgres` they go to its `pg` pool as named
   * prepared statements, else through Prisma. Same SQL, deadline and error mapping either way.
   */
  _runPrepared<T>(operation: string, fn: (db: PrismaTransaction) => Promise<T>): Promise<T> {
    return guarded(this.#timeout, operation, () => fn(directQueries(this.#prisma) ?? this.#prisma))
  }

  /** @internal Runs `fn` in one transaction. */
  _transaction<T>(
    operation: string,
    fn: (tx: PrismaTransaction) => Promise<T>,
    options: { statements?: number } = {},
  ): Promise<T> {
    // a transaction of many statements gets the timeout per started 50 of them
    const timeout = this.#timeout * Math.max(1, Math.ceil((options.statements ?? 1) / 50))
    return guarded(timeout, operation, () =>
      this.#prisma.$transaction(fn, { timeout, maxWait: this.#timeout }),
    )
  }
}

/**
 * Creates the L3 tier over a PrismaClient. Run {@link migrate} once first.
 * @example
 * const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString }) })
 * await migrate(prisma)
 * const l3 = createPrismaStore({ prisma })
 */
export function createPrismaStore(options: PrismaStoreOptions): PrismaTier {
  return new PrismaTier(options)
}
