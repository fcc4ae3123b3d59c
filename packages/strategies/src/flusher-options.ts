import { InvalidOptionError } from '@actor-cache/core'

/** Options of the write-behind flusher. */
export interface WriteBehindOptions {
  /** Most queued writes persisted per batch. @default 500 */
  batchSize?: number
  /** Longest wait for new writes when the queue is empty, in ms. @default 100 */
  interval?: number
  /** After a partial batch arrives, wait this long (ms) for more before persisting. @default 10 */
  linger?: number
  /**
   * Attempts after which a write that keeps failing for a reason other than the record being
   * unreachable goes to the dead letters. Unreachable records are retried without limit (the queue
   * is bounded, so callers see `E_QUEUE_FULL` instead). @default 10
   */
  maxAttempts?: number
  /** First retry delay after a failed batch, in ms; doubles up to `retryMax`. @default 100 */
  retryBase?: number
  /** Longest retry delay, in ms. @default 5_000 */
  retryMax?: number
  /** Start flushing as soon as the cache is created. @default true */
  autoStart?: boolean
}

/** The options with their defaults, checked. @throws {InvalidOptionError} */
export function checkOptions(o: WriteBehindOptions): Required<WriteBehindOptions> {
  const int = (name: string, v: unknown, min: number): number => {
    if (!Number.isSafeInteger(v) || (v as number) < min) {
      throw new InvalidOptionError(
        `writeBehind.${name}`,
        `must be an integer of at least ${min}, got ${String(v)}`,
      )
    }
    return v as number
  }
  return {
    batchSize: int('batchSize', o.batchSize ?? 500, 1),
    interval: int('interval', o.interval ?? 100, 1),
    linger: int('linger', o.linger ?? 10, 0),
    maxAttempts: int('maxAttempts', o.maxAttempts ?? 10, 1),
    retryBase: int('retryBase', o.retryBase ?? 100, 1),
    retryMax: int('retryMax', o.retryMax ?? 5_000, 1),
    autoStart: o.autoStart !== false,
  }
}
