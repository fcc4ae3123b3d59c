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

/** Something a call's deadline can abort. */
export interface Abortable {
  abort(): void
}

/**
 * The context handed to one loader or batch-loader call: its abort signal, the stale value, and
 * the directives the loader gives about caching its answer ({@link CacheDirectives}), collected
 * until the call settles.
 *
 * The signal is made when the loader first reads it: an `AbortController` costs a few µs, and
 * most loaders never look (every miss pays for one otherwise). Aborted before that, the loader
 * gets a signal aborted already.
 */
export class LoadContext<V> implements LoaderContext<V>, BatchLoaderContext, Abortable {
  readonly stale: V | undefined
  readonly #namespace: string
  #controller: AbortController | undefined
  #aborted = false
  #caching: Caching = DEFAULT_CACHING
  #open = true

  constructor(namespace: string, stale: V | undefined) {
    this.#namespace = namespace
    this.stale = stale
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort()
    }
    return this.#controller.signal
  }

  /** The call ran out of time: its signal is (or will be, when read) aborted. */
  abort(): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#controller?.abort()
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
