import { randomUUID } from 'node:crypto'
import { InvalidOptionError, LeaseLostError, type RelayLease } from '@actor-cache/core'
import type { ChangeKeys } from './change-transport-options.js'
import type { Commander } from './connection.js'
import { Script } from './scripts.js'

/**
 * SET lease NX PX; on success the next epoch: above the last one and at least the server's clock
 * in ms, so epochs keep growing even after Redis lost its data (a restart without persistence),
 * while shard fences written by a paused older holder may survive in other nodes of a cluster.
 * `holder` still set means the previous holder let its lease expire: a takeover.
 * KEYS: lease, relay. ARGV: token, ttl, owner. Returns {epoch, takeover (1 | 0)} or nil.
 */
const ACQUIRE = new Script(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
local epoch = string.format('%.0f', math.max(last + 1, now))
local previous = redis.call('HGET', KEYS[2], 'holder')
redis.call('HSET', KEYS[2], 'epoch', epoch, 'holder', ARGV[1], 'owner', ARGV[3])
if previous then return {epoch, 1} end
return {epoch, 0}
`)

/** KEYS: lease. ARGV: token, ttl. */
const RENEW = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

/** KEYS: lease, relay. ARGV: token. The holder mark goes even when the lease already expired. */
const RELEASE = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('HGET', KEYS[2], 'holder') == ARGV[1] then redis.call('HDEL', KEYS[2], 'holder') end
return 1
`)

/**
 * Saves the checkpoint only while the lease holds the token and no newer epoch was acquired.
 * KEYS: lease, relay. ARGV: token, epoch, checkpoint.
 */
const SAVE = new Script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], 'cp', ARGV[3])
return 1
`)

/** Longest relay owner id. */
const MAX_OWNER = 512
/** Longest checkpoint text (feed positions are short; this only stops absurd values). */
const MAX_CHECKPOINT = 1_000_000

/** Checks a lease's ttl in ms. @throws {InvalidOptionError} */
export function checkTtl(ttl: unknown): number {
  if (!Number.isSafeInteger(ttl) || (ttl as number) < 1) {
    throw new InvalidOptionError(
      'ttl',
      `must be a positive integer number of ms, got ${String(ttl)}`,
    )
  }
  return ttl as number
}

/** Checks that `lease` is shaped like a lease this transport hands out. @throws {InvalidOptionError} */
export function checkLease(lease: unknown): RelayLease {
  const l = lease as Partial<RelayLease> | null
  if (
    typeof l !== 'object' ||
    l === null ||
    !Number.isSafeInteger(l.epoch) ||
    (l.epoch as number) < 1 ||
    typeof l.token !== 'string' ||
    l.token.length === 0
  ) {
    throw new InvalidOptionError('lease', 'must be a lease returned by acquireRelay')
  }
  return l as RelayLease
}

/**
 * The relay lease and checkpoint of one change stream: one hash slot (`{<prefix>:<name>}`), every
 * step one script.
 * @internal
 */
export class ChangeLease {
  readonly #commander: Commander
  readonly #keys: readonly [lease: string, relay: string]

  constructor(commander: Commander, keys: ChangeKeys) {
    this.#commander = commander
    this.#keys = [keys.lease, keys.relay]
  }

  /** Checks the arguments of {@link acquire}. @throws {InvalidOptionError} */
  static check(owner: unknown, ttl: unknown): void {
    if (typeof owner !== 'string' || owner.length === 0 || owner.length > MAX_OWNER) {
      throw new InvalidOptionError(
        'owner',
        `must be a non-empty string of at most ${MAX_OWNER} characters, got ${typeof owner === 'string' ? `${owner.length} characters` : String(owner)}`,
      )
    }
    checkTtl(ttl)
  }

  async acquire(owner: string, ttl: number): Promise<RelayLease | undefined> {
    const token = randomUUID()
    const reply = await ACQUIRE.run<[string | number, string | number] | null>(
      this.#commander,
      this.#keys,
      [token, String(ttl), owner],
    )
    if (!Array.isArray(reply)) return undefined
    return Object.freeze({
      epoch: Number(reply[0]),
      owner,
      token,
      takeover: Number(reply[1]) === 1,
    })
  }

  async renew(lease: RelayLease, ttl: number): Promise<boolean> {
    const [key] = this.#keys
    return Number(await RENEW.run(this.#commander, [key], [lease.token, String(ttl)])) === 1
  }

  async release(lease: RelayLease): Promise<void> {
    await RELEASE.run(this.#commander, this.#keys, [lease.token])
  }

  /** @throws {LeaseLostError} when the lease is gone or a newer one was acquired */
  async save(lease: RelayLease, checkpoint: string): Promise<void> {
    const saved = await SAVE.run(this.#commander, this.#keys, [
      lease.token,
      String(lease.epoch),
      checkpoint,
    ])
    if (Number(saved) !== 1) {
      throw new LeaseLostError('saveCheckpoint', lease.epoch, { tier: this.#commander.tier })
    }
  }

  /** Checks a checkpoint's text. @throws {InvalidOptionError} */
  static checkCheckpoint(checkpoint: unknown): string {
    if (typeof checkpoint !== 'string' || checkpoint.length > MAX_CHECKPOINT) {
      throw new InvalidOptionError(
        'checkpoint',
        `must be a string of at most ${MAX_CHECKPOINT} characters`,
      )
    }
    return checkpoint
  }

  async load(): Promise<string | undefined> {
    const [, relay] = this.#keys
    const cp = await this.#commander.send<string | null>(['HGET', relay, 'cp'], relay, true)
    return cp ?? undefined
  }
}
