import {
  type DeadLetter,
  type DeadLetterQuery,
  type DeadLetterSink,
  DecodeError,
  InvalidOptionError,
  jsonSerializer,
  type QueuedWrite,
  type Serializer,
  type StoredDeadLetter,
  validateDeadLetterQuery,
  validateKey,
  validateNamespace,
} from '@actor-cache/core'
import { guarded, type PrismaLike } from './sql.js'

const TIER = 'postgres'

/** Options of {@link createPrismaDeadLetters}. */
export interface PrismaDeadLettersOptions {
  /** A PrismaClient (any generated client, with `@prisma/adapter-pg` or `pglite-prisma-adapter`). */
  prisma: PrismaLike
  /** Serializer of each letter's `write` (its value may hold Date, Map, bigint). @default jsonSerializer */
  serializer?: Serializer
  /** Longest any operation may take before it fails with `TierUnavailableError`, in ms. @default 5000 */
  timeout?: number
}

interface DeadLetterRow {
  id: string
  namespace: string
  key: string
  payload: string
  error: string
  attempts: number
  first_seen: Date
  last_seen: Date
}

const COLUMNS = 'id::text AS id, namespace, key, payload, error, attempts, first_seen, last_seen'
/** Largest `attempts` the INTEGER column holds. */
const MAX_ATTEMPTS = 2 ** 31 - 1
/** Largest epoch ms a JavaScript Date holds (PostgreSQL's timestamptz goes further). */
const MAX_TIME = 8.64e15
const MAX_ID = 9_223_372_036_854_775_807n

function checkLetter(letter: DeadLetter, index: number): void {
  const fail = (field: string, what: string): never => {
    throw new InvalidOptionError(field, `${what} (dead letter ${index})`)
  }
  if (typeof letter !== 'object' || letter === null) fail('letter', 'must be an object')
  validateNamespace(letter.namespace)
  validateKey(letter.key, letter.namespace)
  if (typeof letter.write !== 'object' || letter.write === null || Array.isArray(letter.write))
    fail('write', 'must be the queued write object')
  if (typeof letter.error !== 'string') fail('error', 'must be a string')
  if (
    !Number.isSafeInteger(letter.attempts) ||
    letter.attempts < 0 ||
    letter.attempts > MAX_ATTEMPTS
  )
    fail('attempts', `must be a non-negative integer, got ${String(letter.attempts)}`)
  for (const field of ['firstSeen', 'lastSeen'] as const) {
    const t = letter[field]
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > MAX_TIME)
      fail(field, `must be epoch milliseconds, got ${String(t)}`)
  }
}

/**
 * Validates and serializes dead letters into the columns of one UNNEST insert.
 * @throws {InvalidKeyError} | {InvalidOptionError} | {SerializationError}
 */
function prepareLetters(letters: readonly DeadLetter[], serializer: Serializer): unknown[][] {
  if (!Array.isArray(letters)) throw new InvalidOptionError('letters', 'must be an array')
  letters.forEach(checkLetter)
  if (letters.length === 0) return []
  return [
    letters.map((l) => l.namespace),
    letters.map((l) => l.key),
    letters.map((l) => serializer.serialize(l.write)),
    // PostgreSQL text cannot hold NUL; the reason is for people, so it is only marked
    letters.map((l) => l.error.replaceAll('\u0000', '\uFFFD')),
    letters.map((l) => l.attempts),
    letters.map((l) => new Date(l.firstSeen)),
    letters.map((l) => new Date(l.lastSeen)),
  ]
}

/**
 * Validates dead-letter ids: decimal digit strings that fit PostgreSQL's `bigint`.
 * @throws {InvalidOptionError}
 */
function checkIds(ids: readonly string[]): void {
  if (!Array.isArray(ids)) throw new InvalidOptionError('ids', 'must be an array')
  for (const id of ids) {
    if (typeof id !== 'string' || !/^\d{1,19}$/.test(id) || BigInt(id) > MAX_ID) {
      throw new InvalidOptionError(
        'ids',
        `${typeof id === 'string' ? JSON.stringify(id) : `a ${typeof id}`} is not an id this sink issued`,
      )
    }
  }
}

/**
 * The dead-letter sink in `ac_dead_letters`: writes the store of record refuses for good,
 * kept until an operator removes them. `add` is one `INSERT ... SELECT FROM UNNEST(...)`
 * statement (all or none, ids in input order); `list` returns letters by ascending id (oldest
 * first), optionally of one namespace or one key; `remove` deletes by id. Each letter's `write`
 * is stored as text through the serializer, so Date, Map and bigint values come back as they
 * went in (a NUL in `error`, which PostgreSQL text cannot hold, is stored as U+FFFD). Bad input
 * fails before any database access. The table is found through the client's `search_path`
 * (`connectPostgres(url, { schema })`), like the store and the change log.
 */
export class PrismaDeadLetters implements DeadLetterSink {
  readonly #prisma: PrismaLike
  readonly #serializer: Serializer
  readonly #timeout: number

  constructor(options: PrismaDeadLettersOptions) {
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionError('options', 'must be an object')
    if (typeof options.prisma?.$queryRawUnsafe !== 'function') {
      throw new InvalidOptionError('prisma', 'must be a PrismaClient')
    }
    this.#prisma = options.prisma
    this.#serializer = options.serializer ?? jsonSerializer
    this.#timeout = options.timeout ?? 5000
    if (!Number.isSafeInteger(this.#timeout) || this.#timeout < 1) {
      throw new InvalidOptionError(
        'timeout',
        `must be a positive integer number of ms, got ${String(options.timeout)}`,
      )
    }
  }

  /**
   * Stores letters in one statement, all or none.
   * @throws {InvalidKeyError} | {InvalidOptionError} | {SerializationError} before any I/O;
   *   {TierUnavailableError} when the database cannot be reached in time
   */
  async add(letters: readonly DeadLetter[]): Promise<void> {
    const columns = prepareLetters(letters, this.#serializer)
    if (columns.length === 0) return
    await guarded(this.#timeout, 'addDeadLetters', () =>
      this.#prisma.$executeRawUnsafe(
        `INSERT INTO ac_dead_letters (namespace, key, payload, error, attempts, first_seen, last_seen)
         SELECT namespace, key, payload, error, attempts, first_seen, last_seen
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],
                       $6::timestamptz[], $7::timestamptz[]) WITH ORDINALITY
             AS t(namespace, key, payload, error, attempts, first_seen, last_seen, ord)
          ORDER BY ord`,
        ...columns,
      ),
    )
  }

  /**
   * Letters by ascending id (oldest first), at most `limit` (default 100).
   * @throws {InvalidKeyError} | {InvalidOptionError} before any I/O; {DecodeError} for a payload
   *   the serializer cannot read; {TierUnavailableError}
   */
  async list(query?: DeadLetterQuery): Promise<StoredDeadLetter[]> {
    const { namespace, key, limit } = validateDeadLetterQuery(query)
    const where: string[] = []
    const params: unknown[] = []
    if (namespace !== undefined) {
      params.push(namespace)
      where.push(`namespace = $${params.length}`)
    }
    if (key !== undefined) {
      params.push(key)
      where.push(`key = $${params.length}`)
    }
    params.push(limit)
    const rows = await guarded(this.#timeout, 'listDeadLetters', () =>
      this.#prisma.$queryRawUnsafe<DeadLetterRow[]>(
        `SELECT ${COLUMNS} FROM ac_dead_letters ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY id LIMIT $${params.length}`,
        ...params,
      ),
    )
    return rows.map((r) => this.#letter(r))
  }

  /**
   * Removes letters by id; returns how many existed. Unknown ids are ignored.
   * @throws {InvalidOptionError} for an id that is not a decimal digit string, before any I/O;
   *   {TierUnavailableError}
   */
  async remove(ids: readonly string[]): Promise<number> {
    checkIds(ids)
    if (ids.length === 0) return 0
    return guarded(this.#timeout, 'removeDeadLetters', () =>
      this.#prisma.$executeRawUnsafe('DELETE FROM ac_dead_letters WHERE id = ANY($1::bigint[])', [
        ...ids,
      ]),
    )
  }

  #letter(r: DeadLetterRow): StoredDeadLetter {
    let write: QueuedWrite
    try {
      write = this.#serializer.deserialize(r.payload) as QueuedWrite
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error
      throw new DecodeError(`dead letter ${r.id} (${r.namespace}:${r.key}): ${error.message}`, {
        tier: TIER,
        namespace: r.namespace,
        key: r.key,
        cause: error,
      })
    }
    return Object.freeze({
      id: r.id,
      namespace: r.namespace,
      key: r.key,
      write,
      error: r.error,
      attempts: Number(r.attempts),
      firstSeen: r.first_seen.getTime(),
      lastSeen: r.last_seen.getTime(),
    })
  }
}

/**
 * Creates the Postgres {@link DeadLetterSink}. Run `migrate` once first.
 * @example
 * const deadLetters = createPrismaDeadLetters({ prisma })
 * await deadLetters.add([{ namespace, key, write, error, attempts: 5, firstSeen, lastSeen }])
 * for (const letter of await deadLetters.list({ namespace: 'primary_core' })) console.log(letter)
 */
export function createPrismaDeadLetters(options: PrismaDeadLettersOptions): PrismaDeadLetters {
  return new PrismaDeadLetters(options)
}
