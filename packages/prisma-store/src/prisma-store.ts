import {
  type AppendResult,
  type CacheEntry,
  type CacheStore,
  type CacheTier,
  type ChangeRecord,
  type Codec,
  ConflictError,
  channels,
  DecodeError,
  defaultCodec,
  globTokensToRegExpSource,
  InvalidOptionError,
  jsonSerializer,
  type NamespaceOptions,
  parseGlob,
  type ResolvedSet,
  resolveNamespace,
  resolveSetOptions,
  type Serializer,
  type SetManyItem,
  type SetOptions,
  type SetResult,
  type VersionedDelete,
  type VersionedDeleteStore,
  validateKey,
  validateTtl,
  validateVersionedDeletes,
} from '@actor-cache/core'
import { isVersionTaken, versionConflict } from './change-conflict.js'
import { insertChanges, prepareChanges } from './change-log.js'
import { findRejected, isStatementError } from './rejected-rows.js'
import { guarded, type PrismaLike, type PrismaTransaction } from './sql.js'
import { bar, floor, live } from './version-sql.js'

const TIER = 'postgres'

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
}

interface Row {
  key: string
  value: string
  encoding: string
  version: bigint | number
  created_at: Date
  expires_at: Date | null
  tags: string[]
}

const COLUMNS = 'key, value, encoding, version, created_at, expires_at, tags'

/** A validated, encoded write. */
interface Prepared {
  key: string
  value: string
  encoding: 't' | 'b'
  opts: ResolvedSet
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

/** The Postgres store of one namespace. */
export class PrismaStore<V = unknown> implements CacheStore<V>, VersionedDeleteStore {
  readonly tier = TIER
  readonly namespace: string
  readonly #owner: PrismaTier
  readonly #defaultTtl: number
  readonly #codec: Codec

  /** @internal Use {@link PrismaTier.namespace}. */
  constructor(owner: PrismaTier, namespace: string, defaultTtl: number, codec: Codec) {
    this.#owner = owner
    this.namespace = namespace
    this.#defaultTtl = defaultTtl
    this.#codec = codec
  }

  async get(key: string): Promise<CacheEntry<V> | undefined> {
    validateKey(key, this.namespace)
    const rows = await this.#owner._run('get', (db) =>
      db.$queryRawUnsafe<Row[]>(
        `SELECT ${COLUMNS} FROM ac_cache_entries WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
        this.namespace,
        key,
        new Date(),
      ),
    )
    const row = rows[0]
    this.#publishRead(row === undefined ? 'miss' : 'hit', key)
    return row === undefined ? undefined : this.#decode(row)
  }

  async getMany(keys: readonly string[]): Promise<(CacheEntry<V> | undefined)[]> {
    for (const key of keys) validateKey(key, this.namespace)
    if (keys.length === 0) return []
    const rows = await this.#owner._run('getMany', (db) =>
      db.$queryRawUnsafe<Row[]>(
        `SELECT ${COLUMNS} FROM ac_cache_entries WHERE namespace = $1 AND key = ANY($2::text[]) AND ${live(3)}`,
        this.namespace,
        [...keys],
        new Date(),
      ),
    )
    const byKey = new Map(rows.map((r) => [r.key, r]))
    return keys.map((key) => {
      const row = byKey.get(key)
      return row === undefined ? undefined : this.#decode(row)
    })
  }

  async set(key: string, value: V, options?: SetOptions | number): Promise<SetResult> {
    const p = this.#prepare(key, value, options)
    return this.#owner._run('set', (db) => this.#upsert(db, p))
  }

  /**
   * Writes a batch. When every item carries an explicit `version` and keys are distinct (the
   * write-behind case) it is one `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT` statement;
   * otherwise the items run in order inside one transaction. Either way all or nothing.
   */
  async setMany(items: readonly SetManyItem<V>[]): Promise<SetResult[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
    const prepared = items.map((item) => this.#prepare(item.key, item.value, item))
    if (prepared.length === 0) return []
    const distinct = new Set(prepared.map((p) => p.key)).size === prepared.length
    if (distinct && prepared.every((p) => p.opts.version !== undefined)) {
      try {
        return await this.#owner._run('setMany', (db) => this.#batchUpsert(db, prepared))
      } catch (error) {
        if (!isStatementError(error)) throw error
        // The database refused the batch: find out which rows, report them, write nothing.
        throw await findRejected(
          {
            namespace: this.namespace,
            transaction: (fn, statements) =>
              this.#owner._transaction('setMany', fn, { statements }),
            write: (tx, p) => this.#upsert(tx, p),
          },
          prepared,
          error,
        )
      }
    }
    return this.#owner._transaction('setMany', async (tx) => {
      const out: SetResult[] = []
      for (const p of prepared) out.push(await this.#upsert(tx, p))
      return out
    })
  }

  /**
   * Writes a batch and the state changes that belong to it in one transaction: both land or
   * neither does (a change for an entity version already logged rolls the writes back with
   * `ConflictError`).
   */
  async setManyWithChanges(
    items: readonly SetManyItem<V>[],
    changes: readonly ChangeRecord[],
    options: { serializer?: Serializer } = {},
  ): Promise<{ results: SetResult[]; changes: AppendResult }> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
    const prepared = items.map((item) => this.#prepare(item.key, item.value, item))
    const columns = prepareChanges(changes, options.serializer ?? jsonSerializer)
    const batch =
      new Set(prepared.map((p) => p.key)).size === prepared.length &&
      prepared.every((p) => p.opts.version !== undefined)
    try {
      return await this.#owner._transaction('setManyWithChanges', async (tx) => {
        let results: SetResult[] = []
        if (prepared.length > 0 && batch) results = await this.#batchUpsert(tx, prepared)
        else for (const p of prepared) results.push(await this.#upsert(tx, p))
        const logged =
          columns.length === 0
            ? { appended: 0, duplicates: 0 }
            : await insertChanges(tx, changes, columns)
        return { results, changes: logged }
      })
    } catch (error) {
      if (!isVersionTaken(error)) throw error
      // the transaction is gone: name the conflicting change with a query of its own
      throw await versionConflict(changes, error, (fn) =>
        this.#owner._run('setManyWithChanges', fn),
      )
    }
  }

  async delete(key: string): Promise<boolean> {
    validateKey(key, this.namespace)
    return (await this.#deleteWhere('key = $3', key)) > 0
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) validateKey(key, this.namespace)
    if (keys.length === 0) return 0
    return this.#deleteWhere('key = ANY($3::text[])', [...keys])
  }

  /**
   * Versioned deletes: each key whose stored version is older than the given one is replaced by a
   * tombstone that keeps the version for `tombstoneTtl`, so older writes arriving later are
   * ignored. One statement; returns how many live rows were removed.
   */
  async deleteVersions(items: readonly VersionedDelete[]): Promise<number> {
    validateVersionedDeletes(items, this.namespace)
    if (items.length === 0) return 0
    // rows are locked in key order (see #batchUpsert)
    const sorted = [...items].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    const now = Date.now()
    const rows = await this.#owner._run('deleteVersions', (db) =>
      db.$queryRawUnsafe<{ removed: bigint }[]>(
        `WITH old AS (
           SELECT key FROM ac_cache_entries
            WHERE namespace = $1 AND key = ANY($2::text[]) AND ${live(4)}
         ), up AS (
           INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags, deleted)
           SELECT $1, key, '', 't', version, $4, $5, '{}'::text[], true
             FROM UNNEST($2::text[], $3::bigint[]) AS t(key, version)
           ON CONFLICT (namespace, key) DO UPDATE SET value = '', encoding = 't', version = EXCLUDED.version,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, tags = '{}'::text[],
             deleted = true, updated_at = now()
           WHERE ${floor('e', 4)} < EXCLUDED.version
           RETURNING key
         )
         SELECT count(*) AS removed FROM up WHERE key IN (SELECT key FROM old)`,
        this.namespace,
        sorted.map((i) => i.key),
        sorted.map((i) => String(i.version)),
        new Date(now),
        new Date(now + this.#owner._tombstoneTtl),
      ),
    )
    const n = Number(rows[0]?.removed ?? 0)
    if (n > 0 && channels.delete.hasSubscribers) {
      channels.delete.publish({ tier: TIER, namespace: this.namespace, count: n, durationMs: 0 })
    }
    return n
  }

  async deletePattern(pattern: string): Promise<number> {
    const source = globTokensToRegExpSource(parseGlob(pattern))
    return this.#deleteWhere('key ~ $3', source)
  }

  async clear(): Promise<number> {
    return this.#deleteWhere('TRUE')
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key, this.namespace)
    const rows = await this.#owner._run('exists', (db) =>
      db.$queryRawUnsafe<unknown[]>(
        `SELECT 1 AS one FROM ac_cache_entries WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
        this.namespace,
        key,
        new Date(),
      ),
    )
    return rows.length > 0
  }

  async getTTL(key: string): Promise<number | undefined> {
    validateKey(key, this.namespace)
    const now = new Date()
    const rows = await this.#owner._run('getTTL', (db) =>
      db.$queryRawUnsafe<{ expires_at: Date | null }[]>(
        `SELECT expires_at FROM ac_cache_entries WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
        this.namespace,
        key,
        now,
      ),
    )
    const row = rows[0]
    if (row === undefined) return undefined
    return row.expires_at === null
      ? Infinity
      : Math.max(0, row.expires_at.getTime() - now.getTime())
  }

  async setTTL(key: string, ttl: number): Promise<boolean> {
    validateKey(key, this.namespace)
    validateTtl(ttl)
    const now = Date.now()
    const expiresAt =
      ttl === Infinity || now + ttl > 8.64e15 ? null : new Date(now + Math.ceil(ttl))
    const n = await this.#owner._run('setTTL', (db) =>
      db.$executeRawUnsafe(
        `UPDATE ac_cache_entries SET expires_at = $4, updated_at = now() WHERE namespace = $1 AND key = $2 AND ${live(3)}`,
        this.namespace,
        key,
        new Date(now),
        expiresAt,
      ),
    )
    return n > 0
  }

  #prepare(key: string, value: V, options: SetOptions | number | undefined): Prepared {
    validateKey(key, this.namespace)
    const opts = resolveSetOptions(options, this.#defaultTtl, Date.now())
    const data = this.#codec.encode(value)
    if (typeof data === 'string') return { key, value: data, encoding: 't', opts }
    return {
      key,
      value: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
      encoding: 'b',
      opts,
    }
  }

  /**
   * One versioned write; expired rows count as absent (version starts again at 1). A tombstone is
   * absent for compare-and-set but keeps its version: writes get a version above it, and an
   * explicit version must be above it to apply.
   */
  async #upsert(db: PrismaTransaction, p: Prepared): Promise<SetResult> {
    const { opts } = p
    const now = new Date()
    const expiresAt = opts.expiresAt === null ? null : new Date(opts.expiresAt)
    const common = [
      this.namespace,
      p.key,
      p.value,
      p.encoding,
      new Date(opts.createdAt),
      expiresAt,
      [...opts.tags],
      now,
    ]
    const current = floor('e', 8)
    const visible = `(CASE WHEN e.deleted THEN 0 ELSE ${current} END)`
    const assign = `value = EXCLUDED.value, encoding = EXCLUDED.encoding, created_at = EXCLUDED.created_at,
      expires_at = EXCLUDED.expires_at, tags = EXCLUDED.tags, deleted = false, updated_at = now()`
    let sql: string
    const params: unknown[] = [...common]
    if (opts.expectedVersion !== undefined) {
      params.push(String(opts.expectedVersion))
      sql =
        opts.expectedVersion === 0
          ? // absent (or expired): insert, or take over the expired row
            `INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7::text[])
             ON CONFLICT (namespace, key) DO UPDATE SET ${assign}, version = ${current} + 1
             WHERE ${visible} = $9::bigint`
          : `UPDATE ac_cache_entries AS e SET value = $3, encoding = $4, created_at = $5, expires_at = $6,
               tags = $7::text[], updated_at = now(), version = e.version + 1
             WHERE namespace = $1 AND key = $2 AND ${visible} = $9::bigint`
    } else if (opts.version !== undefined) {
      params.push(String(opts.version))
      sql = `INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags)
        VALUES ($1, $2, $3, $4, $9::bigint, $5, $6, $7::text[])
        ON CONFLICT (namespace, key) DO UPDATE SET ${assign}, version = EXCLUDED.version
        WHERE ${bar('e', 8)} <= EXCLUDED.version`
    } else {
      sql = `INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags)
        VALUES ($1, $2, $3, $4, 1, $5, $6, $7::text[])
        ON CONFLICT (namespace, key) DO UPDATE SET ${assign}, version = ${current} + 1`
    }
    // The outer SELECT sees the row as it was before the statement: the stored version when
    // the write did not apply.
    const rows = await db.$queryRawUnsafe<{ applied: bigint | null; stored: bigint | null }[]>(
      `WITH up AS (${sql} RETURNING e.version)
       SELECT (SELECT version FROM up) AS applied,
              (SELECT ${opts.expectedVersion === undefined ? floor('s', 8) : `CASE WHEN s.deleted THEN 0 ELSE ${floor('s', 8)} END`}
                 FROM ac_cache_entries AS s WHERE namespace = $1 AND key = $2) AS stored`,
      ...params,
    )
    const row = rows[0]
    if (row?.applied !== null && row?.applied !== undefined) {
      this.#publishSet(p.key, true)
      return { applied: true, version: Number(row.applied) }
    }
    // Not applied. The statement's snapshot may predate the concurrent write that beat this
    // one (the conflict check sees the newest row, the outer SELECT does not): read again.
    const fresh = await db.$queryRawUnsafe<{ stored: bigint }[]>(
      `SELECT ${opts.expectedVersion === undefined ? floor('s', 3) : `CASE WHEN s.deleted THEN 0 ELSE ${floor('s', 3)} END`} AS stored
         FROM ac_cache_entries AS s WHERE namespace = $1 AND key = $2`,
      this.namespace,
      p.key,
      new Date(),
    )
    const stored = Number(fresh[0]?.stored ?? row?.stored ?? 0)
    if (opts.expectedVersion !== undefined) {
      throw new ConflictError(opts.expectedVersion, stored, {
        tier: TIER,
        namespace: this.namespace,
        key: p.key,
      })
    }
    this.#publishSet(p.key, false)
    return { applied: false, version: stored }
  }

  /** A batch of explicit-version writes with distinct keys, in one statement. */
  async #batchUpsert(db: PrismaTransaction, input: Prepared[]): Promise<SetResult[]> {
    // Rows are locked in key order, so concurrent batches over the same keys cannot deadlock;
    // results come back in input order.
    const items = [...input].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    const now = new Date()
    // Tags cost a per-row array build: only when some item has tags.
    const tagged = items.some((p) => p.opts.tags.length > 0)
    const uniform = items.every((p) => p.encoding === (items[0] as Prepared).encoding)
    // Only the affected-row count comes back: the rows inserted or updated, i.e. the writes that
    // applied (parsing a row per item would cost as much as writing it). The rare batch where
    // some write lost to a newer version reads the stored versions afterwards.
    const count = await db.$executeRawUnsafe(
      `INSERT INTO ac_cache_entries AS e (namespace, key, value, encoding, version, created_at, expires_at, tags)
       SELECT $1, key, value, ${uniform ? '$4' : 'encoding'}, version,
              to_timestamp(created_ms / 1000.0), to_timestamp(expires_ms / 1000.0),
              ${tagged ? 'ARRAY(SELECT jsonb_array_elements_text(tags_json::jsonb))' : `'{}'::text[]`}
         FROM UNNEST($2::text[], $3::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $10::text[])
           AS t(key, value, encoding, version, created_ms, expires_ms, tags_json)
       ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, encoding = EXCLUDED.encoding,
         version = EXCLUDED.version, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
         tags = EXCLUDED.tags, deleted = false, updated_at = now()
       WHERE ${bar('e', 9)} <= EXCLUDED.version`,
      this.namespace,
      items.map((p) => p.key),
      items.map((p) => p.value),
      uniform ? (items[0] as Prepared).encoding : 't',
      uniform ? [] : items.map((p) => p.encoding),
      items.map((p) => String(p.opts.version)),
      // epoch ms as integers: cheaper to send and parse than timestamps
      items.map((p) => String(Math.round(p.opts.createdAt))),
      items.map((p) => (p.opts.expiresAt === null ? null : String(p.opts.expiresAt))),
      now,
      tagged ? items.map((p) => JSON.stringify(p.opts.tags)) : [],
    )
    const stored = new Map<string, number>()
    const tombstones = new Set<string>()
    if (count < items.length) {
      // Keys are distinct and a lost write leaves a strictly newer version: a key applied iff
      // its stored version is the one written.
      const current = await db.$queryRawUnsafe<
        { key: string; version: bigint; deleted: boolean }[]
      >(
        `SELECT key, version, deleted FROM ac_cache_entries WHERE namespace = $1 AND key = ANY($2::text[])`,
        this.namespace,
        items.map((p) => p.key),
      )
      for (const r of current) {
        stored.set(r.key, Number(r.version))
        if (r.deleted) tombstones.add(r.key)
      }
    }
    return input.map((p) => {
      const version = p.opts.version as number
      const now = stored.get(p.key) ?? version
      const applied = now === version && !tombstones.has(p.key)
      this.#publishSet(p.key, applied)
      return { applied, version: now }
    })
  }

  /** Deletes matching rows of this namespace; counts the live ones (expired ones and tombstones go too). */
  async #deleteWhere(condition: string, arg?: unknown): Promise<number> {
    const params: unknown[] = [this.namespace, new Date()]
    if (arg !== undefined) params.push(arg)
    const rows = await this.#owner._run('delete', (db) =>
      db.$queryRawUnsafe<{ live: bigint }[]>(
        `WITH gone AS (DELETE FROM ac_cache_entries WHERE namespace = $1 AND ${condition}
           RETURNING ${live(2)} AS live)
         SELECT count(*) FILTER (WHERE live) AS live FROM gone`,
        ...params,
      ),
    )
    const n = Number(rows[0]?.live ?? 0)
    if (n > 0 && channels.delete.hasSubscribers) {
      channels.delete.publish({ tier: TIER, namespace: this.namespace, count: n, durationMs: 0 })
    }
    return n
  }

  #decode(row: Row): CacheEntry<V> {
    let value: V
    try {
      value = this.#codec.decode(
        row.encoding === 'b' ? new Uint8Array(Buffer.from(row.value, 'base64')) : row.value,
      ) as V
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error
      throw new DecodeError(`${this.namespace}:${row.key}: ${error.message}`, {
        tier: TIER,
        namespace: this.namespace,
        key: row.key,
        cause: error,
      })
    }
    return Object.freeze({
      value,
      version: Number(row.version),
      createdAt: row.created_at.getTime(),
      expiresAt: row.expires_at === null ? null : row.expires_at.getTime(),
      tags: Object.freeze([...row.tags]),
    })
  }

  #publishRead(kind: 'hit' | 'miss', key: string): void {
    const ch = channels[kind]
    if (ch.hasSubscribers) ch.publish({ tier: TIER, namespace: this.namespace, key, durationMs: 0 })
  }

  #publishSet(key: string, applied: boolean): void {
    if (channels.set.hasSubscribers) {
      channels.set.publish({ tier: TIER, namespace: this.namespace, key, durationMs: 0, applied })
    }
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
