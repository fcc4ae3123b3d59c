import { createHmac, timingSafeEqual } from 'node:crypto'
import { type ChangeLog, type ChangeRecord, InvalidOptionError } from '@actor-cache/core'
import { canonicalJson, sha256 } from './chain-hash.js'

/**
 * A digest over every entity's head at one point of the log. Keep it where the database's
 * writers cannot change it (another store, a signed file, a ticket): the log verified against it
 * shows whether history up to that point was rewritten or cut.
 */
export interface ChainCheckpoint {
  format: 1
  /** The log's feed position the checkpoint was taken at. */
  position: string
  /** Records up to `position`. */
  records: number
  /** Entities with at least one record. */
  entities: number
  /** SHA-256 over the sorted heads (entity type, entity id, version, hash). */
  digest: string
  /** When it was taken (epoch ms, the tracker's clock). */
  createdAt: number
  /** HMAC-SHA256 of the fields above, when the tracker has a signing key. */
  signature?: string
}

/** Why a checkpoint does not verify. */
export type CheckpointBreakReason =
  | 'malformed'
  | 'signature'
  | 'record_count'
  | 'position'
  | 'entity_count'
  | 'digest'

/** Outcome of verifying the log against a checkpoint. */
export type CheckpointVerification =
  | { ok: true; records: number; entities: number }
  | { ok: false; reason: CheckpointBreakReason; detail: string }

/** Progress of a long read of the log. */
export type ProgressListener = (progress: { records: number }) => void

interface Heads {
  records: number
  heads: Map<string, { version: number; hash: string }>
}

function track(state: Heads, r: ChangeRecord): void {
  state.records++
  const id = canonicalJson([r.entityType, r.entityId])
  const known = state.heads.get(id)
  if (known === undefined || r.version >= known.version) {
    state.heads.set(id, { version: r.version, hash: r.hash ?? '' })
  }
}

function digest(state: Heads): string {
  const lines = [...state.heads].map(([id, h]) => `${id}\t${h.version}\t${h.hash}`).sort()
  return sha256(lines.join('\n'))
}

const unsigned = (cp: ChainCheckpoint): string => {
  const { signature: _, ...fields } = cp
  return canonicalJson(fields)
}

function sign(cp: ChainCheckpoint, key: Buffer | undefined): ChainCheckpoint {
  if (key === undefined) return cp
  return { ...cp, signature: createHmac('sha256', key).update(unsigned(cp)).digest('hex') }
}

/** Reads the whole log through its feed and takes a checkpoint at its end. */
export async function takeCheckpoint(
  log: ChangeLog,
  options: { batch: number; key?: Buffer; onProgress?: ProgressListener },
): Promise<ChainCheckpoint> {
  const state: Heads = { records: 0, heads: new Map() }
  let position: string | undefined
  for (;;) {
    const page = await log.readFeed(position, options.batch)
    for (const r of page.records) track(state, r)
    position = page.checkpoint
    if (page.records.length > 0) options.onProgress?.({ records: state.records })
    if (page.records.length < options.batch) break
  }
  const cp: ChainCheckpoint = {
    format: 1,
    position: position ?? '',
    records: state.records,
    entities: state.heads.size,
    digest: digest(state),
    createdAt: Date.now(),
  }
  return sign(cp, options.key)
}

function checkShape(cp: unknown): cp is ChainCheckpoint {
  const c = cp as Partial<ChainCheckpoint> | null
  return (
    typeof c === 'object' &&
    c !== null &&
    c.format === 1 &&
    typeof c.position === 'string' &&
    Number.isSafeInteger(c.records) &&
    Number.isSafeInteger(c.entities) &&
    typeof c.digest === 'string' &&
    /^[0-9a-f]{64}$/.test(c.digest)
  )
}

function checkSignature(cp: ChainCheckpoint, key: Buffer | undefined): string | undefined {
  if (key === undefined) return undefined
  if (typeof cp.signature !== 'string') return 'the checkpoint is not signed'
  const expected = Buffer.from(createHmac('sha256', key).update(unsigned(cp)).digest('hex'))
  const given = Buffer.from(cp.signature)
  return given.length === expected.length && timingSafeEqual(given, expected)
    ? undefined
    : 'the signature does not match (altered, or signed with another key)'
}

/**
 * Reads the log from its start up to the checkpoint's position and compares the position, the
 * record count, the entity count and the digest of the heads.
 */
export async function verifyAgainst(
  log: ChangeLog,
  cp: ChainCheckpoint,
  options: { batch: number; key?: Buffer; onProgress?: ProgressListener },
): Promise<CheckpointVerification> {
  if (!checkShape(cp)) {
    throw new InvalidOptionError('checkpoint', 'is not a checkpoint this tracker took')
  }
  const badSignature = checkSignature(cp, options.key)
  if (badSignature !== undefined) return { ok: false, reason: 'signature', detail: badSignature }
  const state: Heads = { records: 0, heads: new Map() }
  let position: string | undefined
  // read exactly as many records as the checkpoint counted: the feed's order is fixed once
  // read, so the position after them is the checkpoint's unless history changed before it
  while (state.records < cp.records) {
    const page = await log.readFeed(position, Math.min(options.batch, cp.records - state.records))
    if (page.records.length === 0) break
    for (const r of page.records) track(state, r)
    position = page.checkpoint
    options.onProgress?.({ records: state.records })
  }
  if (state.records < cp.records) {
    const detail = `the log holds ${state.records} records up to its end, the checkpoint counted ${cp.records} (records deleted)`
    return { ok: false, reason: 'record_count', detail }
  }
  if (cp.records > 0 && position !== cp.position) {
    const detail = `after ${cp.records} records the log is at ${String(position)}, the checkpoint at ${cp.position} (records deleted or inserted before it)`
    return { ok: false, reason: 'position', detail }
  }
  if (state.heads.size !== cp.entities) {
    return {
      ok: false,
      reason: 'entity_count',
      detail: `${state.heads.size} entities up to the checkpoint, it says ${cp.entities}`,
    }
  }
  if (digest(state) !== cp.digest) {
    return {
      ok: false,
      reason: 'digest',
      detail: 'the heads up to the checkpoint differ from the ones it digests (history rewritten)',
    }
  }
  return { ok: true, records: state.records, entities: state.heads.size }
}
