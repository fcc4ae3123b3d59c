import { AsyncLocalStorage } from 'node:async_hooks'
import { InvalidOptionError } from '@actor-cache/core'

/** Who makes a change: the user it is made for and the system (service) that makes it. */
export interface ChangeAuthor {
  /** The user the change is made for, e.g. `user:456`. */
  userId?: string
  /** The system (service, job) that makes it, e.g. `combat`. */
  systemId?: string
}

const storage = new AsyncLocalStorage<ChangeAuthor>()

/** Checks an author's ids: each, when given, a non-empty string of at most 200 characters. */
export function checkAuthor(author: unknown, where = 'author'): ChangeAuthor {
  if (typeof author !== 'object' || author === null) {
    throw new InvalidOptionError(where, 'must be an object with userId and/or systemId')
  }
  const a = author as Record<string, unknown>
  for (const field of ['userId', 'systemId'] as const) {
    const v = a[field]
    if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 200)) {
      throw new InvalidOptionError(
        `${where}.${field}`,
        `must be a non-empty string of at most 200 characters, got ${JSON.stringify(v)}`,
      )
    }
  }
  return {
    ...(a.userId === undefined ? {} : { userId: a.userId as string }),
    ...(a.systemId === undefined ? {} : { systemId: a.systemId as string }),
  }
}

/**
 * Runs `fn` with `author` as the author of every change tracked inside it (and in every promise
 * and callback it starts), unless a change names its own: a request handler sets it once.
 * Nested calls inherit the ids they do not set.
 * @throws {InvalidOptionError} for malformed ids, before `fn` runs
 */
export function trackAs<T>(author: ChangeAuthor, fn: () => T): T {
  const checked = checkAuthor(author)
  return storage.run({ ...storage.getStore(), ...checked }, fn)
}

/** The author set by the enclosing {@link trackAs}, if any. */
export function currentAuthor(): ChangeAuthor | undefined {
  return storage.getStore()
}

/**
 * The author of a change: each id from the first of `given` that has it, else the enclosing
 * {@link trackAs}, else (system only) `defaultSystemId`; or which id nobody gave.
 */
export function resolveAuthor(
  given: readonly ChangeAuthor[],
  defaultSystemId: string | undefined,
): { userId: string; systemId: string } | { missing: 'userId' | 'systemId' } {
  const context = currentAuthor()
  const userId = given.find((a) => a.userId !== undefined)?.userId ?? context?.userId
  const systemId =
    given.find((a) => a.systemId !== undefined)?.systemId ?? context?.systemId ?? defaultSystemId
  if (userId === undefined) return { missing: 'userId' }
  if (systemId === undefined) return { missing: 'systemId' }
  return { userId, systemId }
}
