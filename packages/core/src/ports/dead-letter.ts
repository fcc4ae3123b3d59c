import { InvalidOptionError } from '../errors.js'
import { validateKey, validateNamespace } from '../keys.js'
import type { QueuedWrite } from './write-queue.js'

/** A queued write that can never be applied, set aside with the reason. */
export interface DeadLetter {
  namespace: string
  key: string
  /** The write as it was queued. */
  write: QueuedWrite
  /** Why the store refused it (the database's message). */
  error: string
  /** How many times persisting it was attempted. */
  attempts: number
  /** When it was first refused (epoch ms). */
  firstSeen: number
  /** When it was last refused (epoch ms). */
  lastSeen: number
}

/** A dead letter as stored, with the id the sink gave it. */
export interface StoredDeadLetter extends DeadLetter {
  readonly id: string
}

/** Options of {@link DeadLetterSink.list}. */
export interface DeadLetterQuery {
  /** Only letters of this namespace. */
  namespace?: string
  /** Only letters of this key (needs `namespace`). */
  key?: string
  /** Most letters returned, oldest first. @default 100 */
  limit?: number
}

/**
 * Where write-behind puts writes the store of record refuses for good (a poison row), so the
 * rest of the queue keeps moving. Letters stay until an operator removes them.
 */
export interface DeadLetterSink {
  /** Stores letters, all or none. */
  add(letters: readonly DeadLetter[]): Promise<void>
  /** Letters, oldest first. */
  list(query?: DeadLetterQuery): Promise<StoredDeadLetter[]>
  /** Removes letters by id (after replaying or discarding them); returns how many. */
  remove(ids: readonly string[]): Promise<number>
}

/**
 * Validates a dead-letter query; shared by every sink.
 * @throws {InvalidKeyError} | {InvalidOptionError}
 */
export function validateDeadLetterQuery(
  query: DeadLetterQuery = {},
): Required<Pick<DeadLetterQuery, 'limit'>> & DeadLetterQuery {
  const { namespace, key, limit = 100 } = query
  if (namespace !== undefined) validateNamespace(namespace)
  if (key !== undefined) {
    if (namespace === undefined) throw new InvalidOptionError('key', 'needs a namespace')
    validateKey(key, namespace)
  }
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
    throw new InvalidOptionError(
      'limit',
      `must be an integer from 1 to 10000, got ${String(limit)}`,
    )
  }
  return { ...query, limit }
}

/** An in-process {@link DeadLetterSink} (lost with the process; for tests and single nodes). */
export function createMemoryDeadLetters(): DeadLetterSink {
  const letters = new Map<string, StoredDeadLetter>()
  let next = 0
  return {
    async add(batch) {
      for (const letter of batch) {
        const id = String(++next)
        letters.set(id, Object.freeze({ ...letter, id }))
      }
    },
    async list(query) {
      const { namespace, key, limit } = validateDeadLetterQuery(query)
      const out: StoredDeadLetter[] = []
      for (const letter of letters.values()) {
        if (namespace !== undefined && letter.namespace !== namespace) continue
        if (key !== undefined && letter.key !== key) continue
        out.push(letter)
        if (out.length >= limit) break
      }
      return out
    },
    async remove(ids) {
      let n = 0
      for (const id of ids) if (letters.delete(id)) n++
      return n
    },
  }
}
