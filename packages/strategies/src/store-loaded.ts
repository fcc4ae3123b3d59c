import { ConflictError } from '@actor-cache/core'
import { type Caching, DEFAULT_CACHING } from './cache-directives.js'
import type { Seen } from './loader-runner.js'
import type { NamespaceParts } from './namespace-context.js'

/** The version a compare-and-set expects of a key its tier did not hold. */
const NOT_SEEN = 0

/**
 * Caches a loaded value (never in the store of record: what a loader returns is derived or
 * external data that invalidations must be able to drop). The coordinating cache tier (L2, else
 * L1) stores it only if its version is still the one seen during the read (compare-and-set), so a
 * write or invalidation that happened meanwhile wins; the other tiers take that version.
 */
export async function storeLoaded<V>(
  ns: NamespaceParts<V>,
  key: string,
  value: V,
  from: { token: number; seen: Seen<V> | undefined; startedAt: number },
  caching: Caching = DEFAULT_CACHING,
): Promise<void> {
  const { token, seen } = from
  if (caching.skip || !ns.guard.unchanged(key, token)) return
  const tags = caching.tags
  if (tags.length !== 0) {
    try {
      await ns.ctx.tags.ensure(tags)
    } catch (error) {
      // whether a tag was invalidated during the load is unknown: do not cache a guess
      ns.tiers.report('tags', 'get', error, key)
      return
    }
    // a tag invalidated since the load began may have changed what the loader read
    if (ns.ctx.tags.isStale(tags, from.startedAt)) return
  }
  if (caching.ttl !== undefined) ns.ctx.lifeUsed(caching.ttl + ns.policy.grace)
  const clock = ns.ctx.now()
  const expiresAt = ns.freshness.expiry(clock, caching.ttl)
  const now = ns.ctx.tags.created(clock, tags)
  const { caches, coord, l1sync } = ns.tiers
  const known = seen ?? []
  // The shared tier orders versions; when it failed during the read, keep the value in this
  // instance's L1 only (compare-and-set there), so an outage does not mean a load per read.
  const c = known[coord] === null && coord > 0 ? 0 : coord
  const tier = caches[c]
  const observed = known[c]
  if (tier === undefined || observed === null) return
  let version: number
  try {
    const options = {
      expiresAt,
      createdAt: now,
      tags,
      expectedVersion: observed?.version ?? NOT_SEEN,
    }
    const r =
      tier === l1sync ? l1sync.setSync(key, value, options) : await tier.set(key, value, options)
    version = r.version
  } catch (error) {
    if (!(error instanceof ConflictError)) {
      ns.tiers.report(tier.tier, 'set', error, key)
      if (tier !== l1sync) ns.tiers.failed(key, error)
    }
    return
  }
  if (ns.guard.removedSince(key, token)) {
    // a delete or invalidation (which leaves no newer version) came while this was on the wire
    await ns.tiers.takeBack(tier, key, version)
    return
  }
  if (!ns.guard.unchanged(key, token)) return // a write came meanwhile: its newer version stands
  if (c !== coord) return
  for (let i = 0; i < caches.length; i++) {
    if (i === coord) continue
    if (!ns.guard.unchanged(key, token)) return
    await ns.tiers.put(i, key, value, { version, expiresAt, createdAt: now, tags }, token)
  }
}
