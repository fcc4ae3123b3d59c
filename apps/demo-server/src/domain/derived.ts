import type { CacheView, DemoCache } from '../stack.js'
import { getPrimary } from './actors.js'
import { deriveStats } from './derive.js'
import {
  actorKey,
  DEFAULT_GAME_CONFIG,
  type DerivedSources,
  type DerivedStats,
  GAME_CONFIG_KEY,
} from './types.js'

/** Derived stats, and whether this read computed them. */
export interface DerivedRead {
  stats: DerivedStats
  computed: boolean
}

const same = (a: DerivedSources, b: DerivedSources): boolean =>
  a.primaryCore === b.primaryCore && a.flexibleStats === b.flexibleStats && a.config === b.config

/**
 * An actor's derived stats. A cached value is used while the versions it was computed from are
 * current: dependency and event invalidation drop cached copies when a source changes, and the
 * versions also catch a copy persisted in the store of record before its sources changed
 * (invalidation never deletes the record's rows). Otherwise they are computed and written
 * behind. The caller's reads are checked by its view; the write is the server's own, on `cache`.
 */
export async function getDerived(
  view: CacheView,
  cache: DemoCache,
  id: string,
): Promise<DerivedRead> {
  const key = actorKey(id)
  const [core, flexible, config] = await Promise.all([
    getPrimary(view, id),
    view.namespace('flexible_stats').getEntry(key),
    view.namespace('config').getEntry(GAME_CONFIG_KEY),
  ])
  const sources: DerivedSources = {
    primaryCore: core.version,
    flexibleStats: flexible?.version ?? 0,
    config: config?.version ?? 0,
  }
  const cached = await view.namespace('derived_stats').get(key)
  if (cached !== undefined && same(cached.sources, sources))
    return { stats: cached, computed: false }
  const stats = deriveStats(
    core.value,
    flexible?.value,
    config?.value ?? DEFAULT_GAME_CONFIG,
    sources,
  )
  await cache.namespace('derived_stats').set(key, stats)
  return { stats, computed: true }
}
