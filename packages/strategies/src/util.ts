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

/** A bounded map that forgets its oldest entries. */
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
}
