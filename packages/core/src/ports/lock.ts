import { randomUUID } from 'node:crypto'
import { ClosedError, InvalidKeyError, InvalidOptionError } from '../errors.js'

/** A held lock. */
export interface Lock {
  readonly resource: string
  /** Random token proving ownership. */
  readonly token: string
  /**
   * Fencing number: grows with every acquisition of any lock from this provider. Pass it to the
   * protected resource so a holder whose lock expired cannot overwrite a newer holder's work.
   */
  readonly fence: number
  /** Releases the lock if still held; false when it had expired (and maybe been taken). */
  release(): Promise<boolean>
  /** Extends the lock to `ttl` ms from now if still held; false otherwise. */
  extend(ttl: number): Promise<boolean>
}

/** Options of {@link LockProvider.acquire}. */
export interface AcquireOptions {
  /** Lock lifetime in ms; it expires by itself if the holder dies. */
  ttl: number
  /** How long to wait for a held lock, in ms. @default 0 (try once) */
  waitMs?: number
  /** Pause between attempts while waiting, in ms. @default 10 */
  retryDelayMs?: number
}

/** Mutual exclusion across callers (and, for distributed providers, across instances). */
export interface LockProvider {
  /** Takes the lock, waiting up to `waitMs`; `undefined` when it could not be had in time. */
  acquire(resource: string, options: AcquireOptions): Promise<Lock | undefined>
  /** Releases resources the provider owns. */
  close(): Promise<void>
}

/**
 * Validates acquire arguments; shared by every provider.
 * @throws {InvalidKeyError} | {InvalidOptionError}
 */
export function validateAcquire(
  resource: unknown,
  options: AcquireOptions,
): Required<AcquireOptions> {
  if (typeof resource !== 'string' || resource.length === 0 || resource.length > 512) {
    throw new InvalidKeyError('lock resource must be a non-empty string of at most 512 characters')
  }
  const { ttl, waitMs = 0, retryDelayMs = 10 } = options ?? ({} as AcquireOptions)
  if (!Number.isSafeInteger(ttl) || ttl < 1) {
    throw new InvalidOptionError(
      'ttl',
      `must be a positive integer number of ms, got ${String(ttl)}`,
    )
  }
  if (!(waitMs >= 0) || !Number.isFinite(waitMs)) {
    throw new InvalidOptionError(
      'waitMs',
      `must be a non-negative number of ms, got ${String(waitMs)}`,
    )
  }
  if (!(retryDelayMs > 0) || !Number.isFinite(retryDelayMs)) {
    throw new InvalidOptionError(
      'retryDelayMs',
      `must be a positive number of ms, got ${String(retryDelayMs)}`,
    )
  }
  return { ttl, waitMs, retryDelayMs }
}

/**
 * An in-process {@link LockProvider}: exclusive within one process. Waiters are woken as soon
 * as the lock is released, and otherwise retry every `retryDelayMs` until it expires.
 */
export function createLocalLockProvider(): LockProvider {
  const held = new Map<string, { token: string; expiresAt: number }>()
  const waiters = new Map<string, Set<() => void>>()
  let fence = 0
  let closed = false
  const tryTake = (resource: string, ttl: number): Lock | undefined => {
    const now = Date.now()
    const current = held.get(resource)
    if (current && current.expiresAt > now) return undefined
    const token = randomUUID()
    const mine = { token, expiresAt: now + ttl }
    held.set(resource, mine)
    const isMine = (): boolean => held.get(resource) === mine && mine.expiresAt > Date.now()
    return {
      resource,
      token,
      fence: ++fence,
      async release() {
        const ok = isMine()
        if (held.get(resource) === mine) held.delete(resource)
        for (const w of waiters.get(resource) ?? []) w()
        return ok
      },
      async extend(next) {
        if (!Number.isSafeInteger(next) || next < 1) {
          throw new InvalidOptionError(
            'ttl',
            `must be a positive integer number of ms, got ${String(next)}`,
          )
        }
        if (!isMine()) return false
        mine.expiresAt = Date.now() + next
        return true
      },
    }
  }
  return {
    async acquire(resource, options) {
      const { ttl, waitMs, retryDelayMs } = validateAcquire(resource, options)
      if (closed) throw new ClosedError('lock provider')
      const deadline = Date.now() + waitMs
      for (;;) {
        const lock = tryTake(resource, ttl)
        if (lock) return lock
        const left = deadline - Date.now()
        if (left <= 0) return undefined
        await new Promise<void>((resolve) => {
          const s = waiters.get(resource) ?? new Set<() => void>()
          waiters.set(resource, s)
          const timer = setTimeout(done, Math.min(left, retryDelayMs))
          function done(): void {
            clearTimeout(timer)
            s.delete(done)
            if (s.size === 0) waiters.delete(resource)
            resolve()
          }
          s.add(done)
        })
      }
    },
    async close() {
      closed = true
    },
  }
}
