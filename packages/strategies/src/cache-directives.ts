import { validateTags, validateTtl } from '@actor-cache/core'
import type { BatchLoaderContext, LoaderContext } from './policy.js'

const NO_TAGS: readonly string[] = Object.freeze([])

/** How a loaded answer is to be cached, once its loader has said. */
export interface Caching {
  /** Cache nothing (the answer only goes to the callers). */
  readonly skip: boolean
  /** Life of the cached copies in ms; `undefined`: the namespace's TTL with jitter. */
  readonly ttl: number | undefined
  readonly tags: readonly string[]
}

/** What a load caches when its loader said nothing. */
export const DEFAULT_CACHING: Caching = Object.freeze({
  skip: false,
  ttl: undefined,
  tags: NO_TAGS,
})

/**
 * The context handed to one loader or batch-loader call: its abort signal, the stale value, and
 * the directives the loader gives about caching its answer ({@link CacheDirectives}), collected
 * until the call settles.
 */
export class LoadContext<V> implements LoaderContext<V>, BatchLoaderContext {
  readonly signal: AbortSignal
  readonly stale: V | undefined
  readonly #namespace: string
  #caching: Caching = DEFAULT_CACHING
  #open = true

  constructor(namespace: string, signal: AbortSignal, stale: V | undefined) {
    this.#namespace = namespace
    this.signal = signal
    this.stale = stale
  }

  setTtl(ttl: number): void {
    const checked = validateTtl(ttl)
    if (this.#open) this.#caching = { ...this.#caching, ttl: checked }
  }

  setTags(tags: readonly string[]): void {
    const checked = validateTags(tags, this.#namespace)
    if (this.#open) this.#caching = { ...this.#caching, tags: checked }
  }

  doNotCache(): void {
    if (this.#open) this.#caching = { ...this.#caching, skip: true }
  }

  /** What the loader said; later calls change nothing. */
  settle(): Caching {
    this.#open = false
    return this.#caching
  }
}
