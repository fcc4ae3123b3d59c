import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { DecryptError, type ErrorContext } from '@actor-cache/core'
import { type Keyring, secretOf } from './keyring.js'

/**
 * AES-256-GCM envelope, version 1:
 * `0x01 | kidLength (1 byte) | kid (ASCII) | nonce (12 bytes) | ciphertext | tag (16 bytes)`.
 * The associated data is the header (version and key id) followed by the context the value was
 * bound to (namespace, key, field): a ciphertext moved to another key, namespace or field, or given
 * another key id, fails authentication.
 */
const VERSION = 1
const NONCE = 12
const TAG = 16
const encoder = new TextEncoder()

/** What a ciphertext is bound to; any difference on open fails. */
export interface Binding {
  namespace: string
  key: string
  /** Dotted field path, or '' for a whole value. */
  field: string
}

/** What a ciphertext that belongs to no cache entry is bound to: a label naming its use. */
export interface LabelBinding {
  label: string
}

function aad(header: Uint8Array, b: Binding | LabelBinding): Buffer {
  // two elements for a label, three for an entry: one can never authenticate as the other
  const context = 'label' in b ? ['label', b.label] : [b.namespace, b.key, b.field]
  return Buffer.concat([header, encoder.encode(JSON.stringify(context))])
}

/** Encrypts `plaintext` with the keyring's primary key, bound to `binding`. */
export function seal(
  keyring: Keyring,
  plaintext: Uint8Array,
  binding: Binding | LabelBinding,
): Buffer {
  const kid = keyring.primary
  const secret = secretOf(keyring, kid)
  if (secret === undefined) throw new DecryptError(`primary key "${kid}" is missing`)
  const header = Buffer.alloc(2 + kid.length)
  header[0] = VERSION
  header[1] = kid.length
  header.write(kid, 2, 'latin1')
  const nonce = randomBytes(NONCE)
  const cipher = createCipheriv('aes-256-gcm', secret, nonce, { authTagLength: TAG })
  cipher.setAAD(aad(header, binding))
  const body = cipher.update(plaintext)
  const final = cipher.final()
  return Buffer.concat([header, nonce, body, final, cipher.getAuthTag()])
}

/** Key id recorded in an envelope, or undefined when `data` is not one. */
export function keyIdOf(data: Uint8Array): string | undefined {
  if (data.byteLength < 2 || data[0] !== VERSION) return undefined
  const n = data[1] as number
  if (n === 0 || data.byteLength < 2 + n + NONCE + TAG) return undefined
  return Buffer.from(data.buffer, data.byteOffset + 2, n).toString('latin1')
}

/**
 * Decrypts an envelope bound to `binding`.
 * @throws {DecryptError} for anything but an intact envelope of a known key bound to `binding`
 */
export function open(
  keyring: Keyring,
  data: Uint8Array,
  binding: Binding | LabelBinding,
  context: ErrorContext,
): Buffer {
  const kid = keyIdOf(data)
  if (kid === undefined) {
    throw new DecryptError('stored value is not an encrypted envelope (version 1)', context)
  }
  const secret = secretOf(keyring, kid)
  if (secret === undefined) {
    throw new DecryptError(`stored value names key "${kid}", which the keyring does not hold`, {
      ...context,
      keyId: kid,
    })
  }
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const headerEnd = 2 + kid.length
  const nonce = bytes.subarray(headerEnd, headerEnd + NONCE)
  const body = bytes.subarray(headerEnd + NONCE, bytes.byteLength - TAG)
  const tag = bytes.subarray(bytes.byteLength - TAG)
  try {
    const decipher = createDecipheriv('aes-256-gcm', secret, nonce, { authTagLength: TAG })
    decipher.setAAD(aad(bytes.subarray(0, headerEnd), binding))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(body), decipher.final()])
  } catch (error) {
    throw new DecryptError(
      'stored value failed authentication (tampered, or bound to another namespace, key or field)',
      { ...context, keyId: kid, cause: error },
    )
  }
}
