import type { CacheView } from '../stack.js'
import { getPrimary, type Versioned, type Written } from './actors.js'
import { actorKey, type FlexibleStats } from './types.js'

/** An actor's equipment and buffs; an actor without any has none at version 0. */
export async function getFlexible(view: CacheView, id: string): Promise<Versioned<FlexibleStats>> {
  await getPrimary(view, id)
  const entry = await view.namespace('flexible_stats').getEntry(actorKey(id))
  return entry === undefined
    ? { version: 0, value: { equipment: {}, buffs: [] } }
    : { version: entry.version, value: entry.value }
}

/**
 * Replaces an actor's equipment and buffs (write-around: the store of record, then the cached
 * copies are dropped, and with them the actor's derived stats).
 */
export async function putFlexible(
  view: CacheView,
  id: string,
  value: FlexibleStats,
  expectedVersion: number | undefined,
): Promise<Written> {
  await getPrimary(view, id)
  const options = expectedVersion === undefined ? {} : { expectedVersion }
  const result = await view.namespace('flexible_stats').set(actorKey(id), value, options)
  return { version: result.version }
}
