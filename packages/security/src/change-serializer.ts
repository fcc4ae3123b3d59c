import {
  DecryptError,
  InvalidOptionError,
  jsonSerializer,
  type Serializer,
} from '@actor-cache/core'
import { type LabelBinding, open, seal } from './aes-gcm.js'
import { checkKeyring, ENCRYPTED_PREFIX } from './encryption.js'
import type { Keyring } from './keyring.js'

/** Options of {@link encryptedSerializer}. */
export interface EncryptedSerializerOptions {
  /** The data keys; new values use its primary key, reads use the key each value names. */
  keyring: Keyring
  /** Turns a value into the text that is encrypted, and back. @default jsonSerializer */
  inner?: Serializer
  /**
   * Names the use of the values, bound into every ciphertext: a value written under one label
   * does not open under another, nor as a cache entry of `encryptTier`. 1 to 200 characters.
   * @default 'actor-cache:change-log'
   */
  label?: string
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * A `Serializer` whose text is an AES-256-GCM envelope (`ac:enc1:<base64>`, the envelope of
 * `encryptTier`: key id, random nonce, ciphertext, tag) of the inner serializer's text, bound to
 * `label`. Give it to the change log (`createPrismaChangeLog({ serializer })`) and to the store of
 * record (`createPrismaStore({ changeSerializer })`) to keep the old and new values of state
 * changes out of `ac_state_changes` in clear. The state tracker keeps the plain JSON serializer:
 * it hashes the values the log hands back decrypted.
 *
 * `deserialize` fails with `DecryptError` (`E_DECRYPT`) for a flipped bit, a value of another
 * label, an unknown key id or plaintext (fail closed), never returning garbage. The serializer
 * is given no entity, so a ciphertext copied to another record still opens: the state tracker's
 * `verify` finds that (the record's hash covers its values, its entity and its version).
 * @throws {InvalidOptionError} | {InvalidKeyError} for bad options
 */
export function encryptedSerializer(options: EncryptedSerializerOptions): Serializer {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', 'must be an object { keyring, inner?, label? }')
  }
  const keyring = checkKeyring(options.keyring)
  const inner = options.inner ?? jsonSerializer
  if (typeof inner?.serialize !== 'function' || typeof inner.deserialize !== 'function') {
    throw new InvalidOptionError('inner', 'must be a Serializer with serialize and deserialize')
  }
  const label = options.label ?? 'actor-cache:change-log'
  if (typeof label !== 'string' || label.length === 0 || label.length > 200) {
    throw new InvalidOptionError(
      'label',
      `must be a string of 1 to 200 characters, got ${JSON.stringify(label) ?? String(label)}`,
    )
  }
  const binding: LabelBinding = { label }
  return {
    name: `aes-256-gcm(${inner.name})`,
    serialize(value) {
      const plaintext = encoder.encode(inner.serialize(value))
      return ENCRYPTED_PREFIX + seal(keyring, plaintext, binding).toString('base64')
    },
    deserialize(text) {
      if (typeof text !== 'string' || !text.startsWith(ENCRYPTED_PREFIX)) {
        // fail closed: a value planted in clear is never read as if it had been encrypted
        throw new DecryptError(`stored ${label} value is not encrypted`)
      }
      const bytes = Buffer.from(text.slice(ENCRYPTED_PREFIX.length), 'base64')
      const plain = open(keyring, bytes, binding, {})
      let decoded: string
      try {
        decoded = decoder.decode(plain)
      } catch (error) {
        throw new DecryptError(`decrypted ${label} value is not UTF-8 text`, { cause: error })
      }
      return inner.deserialize(decoded)
    },
  }
}
