/** Counters of the memory tier, overall or for one namespace. */
export interface MemCacheCounters {
  hits: number
  misses: number
  sets: number
  deletes: number
  evictions: number
  expirations: number
}

/** Statistics of a {@link MemCache}. */
export interface MemCacheStats extends MemCacheCounters {
  /** hits / (hits + misses), 0 when there were no reads. */
  hitRatio: number
  /** Entries held now. */
  entries: number
  /** Estimated bytes held now. */
  bytes: number
  /** Configured budget in bytes. */
  maxSize: number
  /** The same counters per namespace. */
  namespaces: Record<string, MemCacheCounters & { hitRatio: number }>
}

/** Fresh zeroed counters. */
export const newCounters = (): MemCacheCounters => ({
  hits: 0,
  misses: 0,
  sets: 0,
  deletes: 0,
  evictions: 0,
  expirations: 0,
})

const ratio = (c: MemCacheCounters): number =>
  c.hits + c.misses === 0 ? 0 : c.hits / (c.hits + c.misses)

/** Sums per-namespace counters into the overall statistics. */
export function summarize(
  perNamespace: Iterable<{ readonly name: string; readonly counters: MemCacheCounters }>,
  held: { entries: number; bytes: number; maxSize: number },
): MemCacheStats {
  const total = newCounters()
  const namespaces: MemCacheStats['namespaces'] = {}
  for (const ns of perNamespace) {
    const c = ns.counters
    namespaces[ns.name] = { ...c, hitRatio: ratio(c) }
    for (const k of Object.keys(total) as (keyof MemCacheCounters)[]) total[k] += c[k]
  }
  return { ...total, hitRatio: ratio(total), ...held, namespaces }
}
