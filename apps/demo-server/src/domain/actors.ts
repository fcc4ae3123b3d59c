import { ConflictError } from '@actor-cache/core'
import type { CacheView } from '../stack.js'
import { NotFoundError } from './errors.js'
import type { TrackedWriter } from './tracked-writer.js'
import { actorKey, type PrimaryCore } from './types.js'

/** A value with the version it is stored under. */
export interface Versioned<V> {
  version: number
  value: V
}

/** The version a write produced. */
export interface Written {
  version: number
}

/** Throws `ConflictError` when the caller expected another version than the stored one. */
export function checkExpected(
  expected: number | undefined,
  actual: number,
  where: { namespace: string; key: string },
): void {
  if (expected !== undefined && expected !== actual) {
    throw new ConflictError(expected, actual, where)
  }
}

/** The actor's primary core and its version. */
export async function getPrimary(view: CacheView, id: string): Promise<Versioned<PrimaryCore>> {
  const entry = await view.namespace('primary_core').getEntry(actorKey(id))
  if (entry === undefined) throw new NotFoundError(`actor "${id}"`)
  return { version: entry.version, value: entry.value }
}

/**
 * Writes the whole primary core (write-through). With `expectedVersion`, a compare-and-set
 * (`0`: only if the actor does not exist yet); without, the last write wins.
 */
export async function putPrimary(
  view: CacheView,
  id: string,
  value: PrimaryCore,
  expectedVersion: number | undefined,
): Promise<Written> {
  const options = expectedVersion === undefined ? {} : { expectedVersion }
  const result = await view.namespace('primary_core').set(actorKey(id), value, options)
  return { version: result.version }
}

/**
 * Changes some fields of the primary core. The write is a compare-and-set against the version
 * read (or the one the caller expected), so a concurrent change is a conflict, never lost.
 */
export async function patchPrimary(
  view: CacheView,
  id: string,
  patch: Partial<PrimaryCore>,
  expectedVersion: number | undefined,
): Promise<Written & { value: PrimaryCore }> {
  const current = await getPrimary(view, id)
  checkExpected(expectedVersion, current.version, {
    namespace: 'primary_core',
    key: actorKey(id),
  })
  const value = { ...current.value, ...patch }
  const result = await view
    .namespace('primary_core')
    .set(actorKey(id), value, { expectedVersion: current.version })
  return { version: result.version, value }
}

/**
 * Deletes the actor: its primary core first, as one compare-and-delete when a version is expected
 * (the record checks it under the row's lock, in the delete's transaction, so no write can slip
 * in between), then its flexible and derived stats. A conflict deletes nothing.
 */
export async function deleteActor(
  view: CacheView,
  primary: TrackedWriter<PrimaryCore>,
  id: string,
  expectedVersion: number | undefined,
): Promise<void> {
  const key = actorKey(id)
  const deleted = await primary.delete(
    key,
    expectedVersion === undefined ? {} : { expectedVersion },
  )
  if (!deleted) throw new NotFoundError(`actor "${id}"`)
  await view.namespace('flexible_stats').delete(key)
  await view.namespace('derived_stats').delete(key)
}
