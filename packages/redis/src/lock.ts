import { createHash, randomUUID } from 'node:crypto'
import {
  type AcquireOptions,
  InvalidOptionError,
  type Lock,
  type LockProvider,
  validateAcquire,
} from '@actor-cache/core'
import {
  type Commander,
  type RedisComponentOptions,
  resolveComponentOptions,
} from './connection.js'
import { Script } from './scripts.js'

/** SET NX PX, and on success a fencing number from a counter in the same slot. */
const ACQUIRE = new Script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
`)
const RELEASE = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
const EXTEND = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

/** Options of {@link createRedisLockProvider}. */
export type RedisLockOptions = RedisComponentOptions

/**
 * Distributed locks: `SET key token NX PX ttl` with a random token, released and extended only
 * by the token's owner (Lua), with a fencing number per resource that grows with every
 * acquisition. Keys `<prefix>:lock:{<sha1>}:<resource>` and `<prefix>:fence:{<sha1>}:<resource>`
 * share a hash slot (the digest of the resource), so it works on a Cluster. Single-instance Redlock semantics: safe while the Redis node
 * holding the lock survives; pass `fence` to the protected resource for safety beyond that.
 */
export class RedisLockProvider implements LockProvider {
  readonly #commander: Commander
  readonly #prefix: string

  constructor(options: RedisLockOptions) {
    const resolved = resolveComponentOptions(options)
    this.#commander = resolved.commander
    this.#prefix = resolved.prefix
  }

  async acquire(resource: string, options: AcquireOptions): Promise<Lock | undefined> {
    const { ttl, waitMs, retryDelayMs } = validateAcquire(resource, options)
    // The hash tag is a digest of the resource: any resource text (braces included) keeps both
    // keys in one Cluster slot; the resource follows for readability.
    const tag = createHash('sha1').update(resource).digest('hex')
    const key = `${this.#prefix}:lock:{${tag}}:${resource}`
    const fenceKey = `${this.#prefix}:fence:{${tag}}:${resource}`
    const token = randomUUID()
    const deadline = Date.now() + waitMs
    for (;;) {
      const fence = await ACQUIRE.run<number>(
        this.#commander,
        [key, fenceKey],
        [token, String(ttl)],
      )
      if (fence > 0) return this.#lock(resource, key, token, fence)
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      // jitter so waiters do not retry in lockstep
      await new Promise((r) => setTimeout(r, Math.min(left, retryDelayMs * (0.5 + Math.random()))))
    }
  }

  #lock(resource: string, key: string, token: string, fence: number): Lock {
    const commander = this.#commander
    return {
      resource,
      token,
      fence,
      async release() {
        return (await RELEASE.run<number>(commander, [key], [token])) === 1
      },
      async extend(ttl: number) {
        if (!Number.isSafeInteger(ttl) || ttl < 1) {
          throw new InvalidOptionError(
            'ttl',
            `must be a positive integer number of ms, got ${String(ttl)}`,
          )
        }
        return (await EXTEND.run<number>(commander, [key], [token, String(ttl)])) === 1
      },
    }
  }

  /** The client is the caller's: nothing to release. */
  async close(): Promise<void> {}
}

/** Creates a Redis {@link LockProvider}. */
export function createRedisLockProvider(options: RedisLockOptions): RedisLockProvider {
  return new RedisLockProvider(options)
}
