import {
  type ClaimDeleteOptions,
  type ClaimResult,
  ConflictError,
  InvalidOptionError,
  MAX_EXPIRES_AT,
  type VersionFloor,
  validateKey,
} from '@actor-cache/core'
import type { Commander } from './connection.js'
import { CLAIM_DELETE_SCRIPT, CLAIM_SET_SCRIPT, RELEASE_CLAIM_SCRIPT } from './scripts.js'
import { keySlot } from './slot.js'
import type { PreparedWrite } from './versioned-set.js'

const TIER = 'redis'

/** For each cluster slot, a short hash tag that maps to it (built on first use). */
let tagsBySlot: string[] | undefined

/** A hash tag (`{…}` content) whose key slot is `slot`. */
function tagForSlot(slot: number): string {
  if (tagsBySlot === undefined) {
    const tags: string[] = new Array(16384)
    let left = 16384
    for (let i = 0; left > 0; i++) {
      const tag = i.toString(36)
      const s = keySlot(`{${tag}}`)
      if (tags[s] === undefined) {
        tags[s] = tag
        left--
      }
    }
    tagsBySlot = tags
  }
  return tagsBySlot[slot] as string
}

/** A claimed write, encoded for the claim script. */
export interface PreparedClaim extends PreparedWrite {
  floor: VersionFloor | undefined
  headTtl: number
}

/**
 * The version heads of one namespace's keys in Redis: `<prefix>:#head:<namespace>:<key>` holds
 * the last version written (`12`) or deleted (`12d`), beside the value's key and, in a Cluster, in
 * its slot (a hash tag is added after `#head:<namespace>:` when the names alone would not share
 * one). A head lives as long
 * as its value and at least `headTtl`; clears and pattern deletes of the namespace keep heads.
 */
export class VersionHeads {
  readonly #commander: Commander
  readonly #prefix: string
  readonly #namespace: string

  constructor(commander: Commander, prefix: string, namespace: string) {
    this.#commander = commander
    this.#prefix = prefix
    this.#namespace = namespace
  }

  /** The head's key of the value stored under `full`. */
  keyOf(key: string, full: string): string {
    const head = this.#prefix + key
    if (!this.#commander.cluster) return head
    const slot = keySlot(full)
    if (keySlot(head) === slot) return head
    const tag = `{${tagForSlot(slot)}}`
    // after the prefix when ours is the first brace there, so ACL key patterns on the prefix match
    return this.#prefix.includes('{') ? `${tag}${head}` : `${this.#prefix}${tag}${key}`
  }

  async set(p: PreparedClaim): Promise<ClaimResult> {
    const at = headExpiry(p.pxat === '' ? null : Number(p.pxat), p.headTtl)
    const [status, shown, head, live] = await CLAIM_SET_SCRIPT.run<
      [number, string, string?, number?]
    >(
      this.#commander,
      [p.full, this.keyOf(p.key, p.full)],
      [p.mode, String(p.n), p.tail, p.pxat, ...floorArgs(p.floor), at],
    )
    return this.#result(p.key, p.mode === 'cas' ? p.n : undefined, [status, shown, head, live])
  }

  async release(
    key: string,
    full: string,
    version: number,
    previous: VersionFloor,
  ): Promise<boolean> {
    const was = `${String(previous.version)}${previous.exists ? '' : 'd'}`
    const n = await RELEASE_CLAIM_SCRIPT.run<number>(
      this.#commander,
      [this.keyOf(key, full)],
      [String(version), was],
    )
    return n === 1
  }

  async delete(key: string, full: string, options: ClaimDeleteOptions): Promise<ClaimResult> {
    validateKey(key, this.#namespace)
    checkClaimOptions(options)
    const cas = options.expectedVersion
    const reply = await CLAIM_DELETE_SCRIPT.run<[number, string, string?, number?]>(
      this.#commander,
      [full, this.keyOf(key, full)],
      [
        cas === undefined ? 'auto' : 'cas',
        String(cas ?? 0),
        ...floorArgs(options.floor),
        headExpiry(undefined, options.headTtl),
      ],
    )
    return this.#result(key, cas, reply)
  }

  #result(
    key: string,
    cas: number | undefined,
    [status, shown, head, live]: [number, string, string?, number?],
  ): ClaimResult {
    const version = Number(shown)
    const ctx = { tier: TIER, namespace: this.#namespace, key }
    if (status === -3) return { needsFloor: true }
    if (status === -1) throw new ConflictError(cas ?? 0, version, ctx)
    if (status === -2) {
      throw new InvalidOptionError(
        'version',
        `${this.#namespace}:${key} is at the largest safe version`,
        ctx,
      )
    }
    if (status !== 1) return { applied: false, version }
    return { applied: true, version, previous: { version: Number(head), exists: live === 1 } }
  }
}

/**
 * The head's absolute expiry for the claim scripts (`''` = none): at least the value's (`null`:
 * the value never expires; `undefined`: a delete, no value), and at least `headTtl` from now.
 */
function headExpiry(valueAt: number | null | undefined, headTtl: number): string {
  if (valueAt === null || headTtl === Infinity) return ''
  const at = Math.max(valueAt ?? 0, Date.now() + Math.ceil(headTtl))
  return at > MAX_EXPIRES_AT ? '' : String(at)
}

function floorArgs(floor: VersionFloor | undefined): [string, string] {
  return floor === undefined ? ['', '0'] : [String(floor.version), floor.exists ? '1' : '0']
}

/**
 * Validates the options a claim shares, before any I/O.
 * @throws {InvalidOptionError}
 */
export function checkClaimOptions(o: {
  floor?: VersionFloor | undefined
  headTtl: number
  expectedVersion?: number | undefined
}): void {
  if (typeof o !== 'object' || o === null)
    throw new InvalidOptionError('options', 'must be an object')
  if (typeof o.headTtl !== 'number' || !(o.headTtl > 0)) {
    throw new InvalidOptionError(
      'headTtl',
      `must be a positive number of milliseconds, got ${String(o.headTtl)}`,
    )
  }
  if (
    o.expectedVersion !== undefined &&
    !(Number.isSafeInteger(o.expectedVersion) && o.expectedVersion >= 0)
  ) {
    throw new InvalidOptionError(
      'expectedVersion',
      `must be an integer from 0, got ${String(o.expectedVersion)}`,
    )
  }
  const f = o.floor
  if (f === undefined) return
  if (
    typeof f !== 'object' ||
    f === null ||
    !(Number.isSafeInteger(f.version) && f.version >= 0) ||
    typeof f.exists !== 'boolean'
  ) {
    throw new InvalidOptionError('floor', 'must be { version: an integer from 0, exists: boolean }')
  }
}
