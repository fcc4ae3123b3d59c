import { createHash } from 'node:crypto'
import { type ChangeRecord, SerializationError, type Serializer } from '@actor-cache/core'
import canonicalize from 'canonicalize'

/** Version of the hashed form below; part of every hash, so a later form cannot collide. */
export const CHAIN_FORMAT = 1

/** The fields of a record that its hash covers (everything but `hash` and `seq`). */
export type HashedFields = Omit<ChangeRecord, 'hash' | 'seq'>

/**
 * The JSON data a value hashes as: what the serializer writes, parsed back. Hashing the data
 * rather than the text makes the hash independent of key order and of how a log stores text, and
 * a value read back from the log (a `Date`, a `Map`) hashes as it did when it was written.
 */
export function hashableValue(value: unknown, serializer: Serializer): unknown {
  if (value === null || value === undefined) return null
  const text = serializer.serialize(value)
  try {
    return JSON.parse(text)
  } catch {
    // a serializer that does not write JSON: its text is the value's canonical form
    return { text }
  }
}

/** RFC 8785 (JCS) text of JSON data. */
export function canonicalJson(data: unknown): string {
  let text: string | undefined
  try {
    text = canonicalize(data)
  } catch (error) {
    throw new SerializationError(
      `cannot hash a change: ${(error as Error).message.replace(/\.$/, '')}`,
      { cause: error },
    )
  }
  if (text === undefined) throw new SerializationError('cannot hash a change with no JSON form')
  return text
}

/**
 * The canonical text a record's hash is taken over: the chain format, every field of the change,
 * its version and the previous record's hash, in RFC 8785 (JCS) form.
 */
export function canonicalChange(record: HashedFields, serializer: Serializer): string {
  return canonicalJson({
    format: CHAIN_FORMAT,
    id: record.id,
    entityType: record.entityType,
    entityId: record.entityId,
    changeType: record.changeType,
    oldValue: hashableValue(record.oldValue, serializer),
    newValue: hashableValue(record.newValue, serializer),
    timestamp: record.timestamp,
    userId: record.userId,
    systemId: record.systemId,
    version: record.version,
    prevHash: record.prevHash ?? null,
  })
}

/** SHA-256 (hex) of a text. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The hash of a record: SHA-256 (hex) of {@link canonicalChange}. */
export function hashChange(record: HashedFields, serializer: Serializer): string {
  return sha256(canonicalChange(record, serializer))
}

/** Whether two values have the same JSON data (as the serializer writes them). */
export function sameValue(a: unknown, b: unknown, serializer: Serializer): boolean {
  return canonicalJson(hashableValue(a, serializer)) === canonicalJson(hashableValue(b, serializer))
}
