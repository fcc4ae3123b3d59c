import type { NamespaceStats } from './namespace-context.js'
import { BoundedMap } from './util.js'

/**
 * The negative cache: a loader's "not found" for a key, remembered in this instance for the
 * namespace's `negativeTtl`. A write, delete or invalidation of the key ends it.
 */
export class NegativeCache {
  /** Until when each key is known to be absent. */
  readonly #until = new BoundedMap<string, number>(100_000)
  readonly #stats: NamespaceStats

  constructor(stats: NamespaceStats) {
    this.#stats = stats
  }

  get size(): number {
    return this.#until.size
  }

  /** True (a negative hit) when `key` is known to be absent at `now`; an expired entry goes. */
  answers(key: string, now: number): boolean {
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (until > now) {
      this.#stats.negativeHits++
      return true
    }
    this.#until.delete(key)
    return false
  }

  remember(key: string, until: number): void {
    this.#until.set(key, until)
  }

  forget(key: string): void {
    this.#until.delete(key)
  }

  clear(): void {
    this.#until.clear()
  }
}
