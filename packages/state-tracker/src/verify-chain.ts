import type { ChangeRecord, Serializer } from '@actor-cache/core'
import { hashChange, sameValue } from './chain-hash.js'

/**
 * Why a chain does not verify:
 * - `entity_mismatch`: the log returned a record of another entity.
 * - `version_gap`: a version is missing (versions run 1, 2, 3, ... without gaps).
 * - `duplicate_version`: a version appears twice.
 * - `hash_mismatch`: a record's hash is not the hash of its fields (edited, or never hashed).
 * - `broken_link`: a record's `prevHash` is not the previous record's hash.
 * - `time_regression`: a record's timestamp is earlier than the previous record's.
 * - `overlapping_writers`: a record's old value is not the previous record's new value: two
 *   writers changed the entity from the same state, or a write happened between them unlogged.
 * - `untracked_write`: the stored entity differs from the state the log ends with.
 */
export type ChainBreakReason =
  | 'entity_mismatch'
  | 'version_gap'
  | 'duplicate_version'
  | 'hash_mismatch'
  | 'broken_link'
  | 'time_regression'
  | 'overlapping_writers'
  | 'untracked_write'

/** The newest record of a verified chain. */
export interface ChainHead {
  version: number
  hash: string
  /** Whether the entity exists after it (the newest change is not a delete). */
  exists: boolean
}

/** Outcome of verifying one entity's chain. */
export type ChainVerification =
  | {
      ok: true
      entityType: string
      entityId: string
      /** Records checked. */
      records: number
      /** The chain's newest record; absent when nothing is logged for the entity. */
      head?: ChainHead
    }
  | {
      ok: false
      entityType: string
      entityId: string
      /** The first version that does not verify. */
      version: number
      reason: ChainBreakReason
      /** What was found there, in words. */
      detail: string
    }

/** The stored state of an entity, to compare with the state its log ends with. */
export type StoredState =
  | { exists: false }
  | {
      exists: true
      value: unknown
      /** The stored version, compared when given. */
      version?: number
    }

type Break = { version: number; reason: ChainBreakReason; detail: string }

function checkRecord(
  r: ChangeRecord,
  prev: ChangeRecord | undefined,
  expected: { entityType: string; entityId: string; version: number },
  serializer: Serializer,
): Break | undefined {
  const at = (reason: ChainBreakReason, detail: string): Break => ({
    version: Number.isSafeInteger(r.version) ? r.version : expected.version,
    reason,
    detail,
  })
  if (r.entityType !== expected.entityType || r.entityId !== expected.entityId) {
    return at(
      'entity_mismatch',
      `record ${JSON.stringify(r.id)} belongs to ${r.entityType} ${JSON.stringify(r.entityId)}`,
    )
  }
  if (r.version < expected.version) {
    return at('duplicate_version', `version ${r.version} appears twice (change ${r.id})`)
  }
  if (r.version > expected.version) {
    const next = `version ${expected.version} is missing (the next is ${r.version})`
    return { ...at('version_gap', next), version: expected.version }
  }
  if (r.hash === undefined || r.hash !== hashChange(r, serializer)) {
    return at(
      'hash_mismatch',
      r.hash === undefined
        ? `change ${r.id} carries no hash`
        : `change ${r.id}'s hash is not the hash of its fields`,
    )
  }
  const link = prev?.hash ?? null
  if ((r.prevHash ?? null) !== link) {
    return at(
      'broken_link',
      prev === undefined
        ? `the first record links to ${String(r.prevHash)}, expected none`
        : `change ${r.id} links to ${String(r.prevHash)}, not to version ${prev.version}'s hash`,
    )
  }
  if (prev !== undefined && r.timestamp < prev.timestamp) {
    return at(
      'time_regression',
      `timestamp ${r.timestamp} is earlier than version ${prev.version}'s ${prev.timestamp}`,
    )
  }
  if (prev !== undefined && !sameValue(r.oldValue, prev.newValue, serializer)) {
    return at(
      'overlapping_writers',
      `change ${r.id}'s old value is not version ${prev.version}'s new value`,
    )
  }
  return undefined
}

function checkStored(last: ChangeRecord | undefined, stored: StoredState, s: Serializer) {
  const version = last?.version ?? 0
  const logged = last !== undefined && last.changeType !== 'delete'
  if (!stored.exists) {
    return logged ? `the entity is not stored, but version ${version} holds a value` : undefined
  }
  if (!logged)
    return `the entity is stored, but ${last ? 'its last change deletes it' : 'it has no log'}`
  if (stored.version !== undefined && stored.version !== version) {
    return `the stored version is ${stored.version}, the log ends at ${version}`
  }
  return sameValue(stored.value, last.newValue, s)
    ? undefined
    : `the stored value differs from version ${version}'s new value`
}

/**
 * Verifies one entity's chain: versions 1..n without gaps or repeats, every hash recomputed,
 * every link, timestamps that never decrease, each change starting from the previous one's
 * state, and, when `stored` is given, the stored entity equal to the state the log ends with.
 * Returns the first break found, oldest version first.
 */
export function verifyChain(
  entityType: string,
  entityId: string,
  records: readonly ChangeRecord[],
  serializer: Serializer,
  stored?: StoredState,
): ChainVerification {
  let prev: ChangeRecord | undefined
  for (const [i, r] of records.entries()) {
    const found = checkRecord(r, prev, { entityType, entityId, version: i + 1 }, serializer)
    if (found !== undefined) return { ok: false, entityType, entityId, ...found }
    prev = r
  }
  if (stored !== undefined) {
    const detail = checkStored(prev, stored, serializer)
    if (detail !== undefined) {
      const version = (prev?.version ?? 0) + 1
      return { ok: false, entityType, entityId, version, reason: 'untracked_write', detail }
    }
  }
  const head =
    prev?.hash === undefined
      ? undefined
      : { version: prev.version, hash: prev.hash, exists: prev.changeType !== 'delete' }
  return { ok: true, entityType, entityId, records: records.length, ...(head ? { head } : {}) }
}
