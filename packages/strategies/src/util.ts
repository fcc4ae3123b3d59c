import { channels } from '@actor-cache/core'

/** Reports an error the cache absorbed (a tier failed but the call could still be answered). */
export function reportError(
  tier: string,
  namespace: string,
  operation: string,
  error: unknown,
  key?: string,
): void {
  if (!channels.error.hasSubscribers) return
  channels.error.publish({
    tier,
    namespace,
    operation,
    error,
    durationMs: 0,
    ...(key === undefined ? {} : { key }),
  })
}

const TIMEOUT: unique symbol = Symbol('timeout')

/** Resolves to {@link TIMEOUT} when `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMEOUT)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

export { TIMEOUT }

/** A bounded map that forgets its oldest entries (the least recently set). */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly #max: number
  constructor(max: number) {
    super()
    this.#max = max
  }
  override set(key: K, value: V): this {
    super.delete(key)
    super.set(key, value)
    if (this.size > this.#max) super.delete(this.keys().next().value as K)
    return this
  }

  /**
   * Like {@link set}, but a key already held keeps its place (it is forgotten as the one first
   * set): for maps where which entry goes first does not matter. Moving a key to the newest end
   * costs a delete and an insert (about 1 µs on a map of thousands of keys); this an update.
   */
  setInPlace(key: K, value: V): this {
    if (super.has(key)) {
      super.set(key, value)
      return this
    }
    return this.set(key, value)
  }
}
