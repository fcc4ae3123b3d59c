import {
  type ByteTransform,
  type CacheStore,
  type CacheTier,
  DecryptError,
  type ErrorContext,
  InvalidOptionError,
  jsonSerializer,
  type NamespaceOptions,
  type Serializer,
  validateNamespace,
} from '@actor-cache/core'
import { type Binding, keyIdOf, open, seal } from './aes-gcm.js'
import { encryptStore } from './encrypted-store.js'
import { type FieldPath, parseFieldPaths, plainObject, sealFields } from './fields.js'
import { type Keyring, secretOf } from './keyring.js'

/** Prefix of an encrypted value as the tiers store it (then base64 of the envelope). */
export const ENCRYPTED_PREFIX = 'ac:enc1:'

/**
 * What to encrypt in each namespace: `'value'` for the whole value, or a list of dotted field paths
 * of an object value (`['email', 'profile.phone']`). Namespaces not listed are stored as they are.
 */
export type EncryptedNamespaces = Readonly<Record<string, 'value' | readonly string[]>>

/** Options of {@link encryptTier}. */
export interface EncryptTierOptions {
  /** The data keys; new writes use its primary key, reads use the key each value names. */
  keyring: Keyring
  /** What to encrypt, by namespace. */
  namespaces: EncryptedNamespaces
  /** Turns a value (or field value) into the bytes that are encrypted. @default jsonSerializer */
  serializer?: Serializer
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encrypts and decrypts values of one namespace, bound to the namespace and each key. */
export class ValueCipher {
  readonly namespace: string
  readonly #keyring: Keyring
  readonly #serializer: Serializer
  readonly #fields: readonly FieldPath[] | undefined

  constructor(
    namespace: string,
    what: 'value' | readonly string[],
    keyring: Keyring,
    serializer: Serializer,
  ) {
    this.namespace = namespace
    this.#keyring = keyring
    this.#serializer = serializer
    this.#fields = what === 'value' ? undefined : parseFieldPaths(what, `namespaces.${namespace}`)
  }

  /** The value as stored: an envelope string, or the object with its fields replaced by envelopes. */
  encrypt(key: string, value: unknown): unknown {
    if (this.#fields === undefined) return this.#sealText(key, '', value)
    return sealFields(value, this.#fields, this.namespace, key, (field, v) =>
      this.#sealText(key, field, v),
    )
  }

  /** @throws {DecryptError} when the stored value is not what {@link encrypt} wrote for this key */
  decrypt(key: string, stored: unknown, tier: string): unknown {
    const context: ErrorContext = { tier, namespace: this.namespace, key }
    if (this.#fields === undefined) return this.#openText(key, '', stored, context)
    if (!plainObject(stored)) {
      throw new DecryptError('stored value is not an object with encrypted fields', context)
    }
    let out: Record<string, unknown> = stored
    for (const path of this.#fields) {
      out = path.update(out, (v) => this.#openText(key, path.name, v, context))
    }
    return out
  }

  #sealText(key: string, field: string, value: unknown): string {
    const plaintext = encoder.encode(this.#serializer.serialize(value))
    const binding: Binding = { namespace: this.namespace, key, field }
    return ENCRYPTED_PREFIX + seal(this.#keyring, plaintext, binding).toString('base64')
  }

  #openText(key: string, field: string, stored: unknown, context: ErrorContext): unknown {
    const where = field === '' ? 'value' : `field "${field}"`
    if (typeof stored !== 'string' || !stored.startsWith(ENCRYPTED_PREFIX)) {
      // fail closed: plaintext planted in a tier is never served as if it had been encrypted
      throw new DecryptError(`stored ${where} is not encrypted`, context)
    }
    const bytes = Buffer.from(stored.slice(ENCRYPTED_PREFIX.length), 'base64')
    const plain = open(this.#keyring, bytes, { namespace: this.namespace, key, field }, context)
    let text: string
    try {
      text = decoder.decode(plain)
    } catch (error) {
      throw new DecryptError(`decrypted ${where} is not UTF-8 text`, { ...context, cause: error })
    }
    return this.#serializer.deserialize(text)
  }
}

/** Key id of an encrypted value or field as stored, or undefined when it is not one. */
export function storedKeyId(stored: unknown): string | undefined {
  if (typeof stored !== 'string' || !stored.startsWith(ENCRYPTED_PREFIX)) return undefined
  return keyIdOf(Buffer.from(stored.slice(ENCRYPTED_PREFIX.length), 'base64'))
}

/** A tier whose listed namespaces are encrypted; see {@link encryptTier}. */
class EncryptedTier implements CacheTier {
  readonly tier: string
  readonly #inner: CacheTier
  readonly #ciphers: ReadonlyMap<string, ValueCipher>

  constructor(inner: CacheTier, ciphers: ReadonlyMap<string, ValueCipher>) {
    this.#inner = inner
    this.tier = inner.tier
    this.#ciphers = ciphers
  }

  namespace<V = unknown>(name: string, options?: NamespaceOptions): CacheStore<V> {
    const store = this.#inner.namespace<unknown>(name, options)
    const cipher = this.#ciphers.get(name)
    if (cipher === undefined) return store as CacheStore<V>
    return encryptStore<V>(store, cipher)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }
}

/**
 * Checks that `keyring` is one this package made.
 * @throws {InvalidOptionError} naming the option `keyring`
 */
export function checkKeyring(keyring: unknown): Keyring {
  if (typeof keyring !== 'object' || keyring === null || secretOf === undefined) {
    throw new InvalidOptionError(
      'keyring',
      'must be a Keyring (createKeyring, keyringFromEnv, ...)',
    )
  }
  try {
    if (secretOf(keyring as Keyring, (keyring as Keyring).primary) !== undefined) {
      return keyring as Keyring
    }
  } catch {}
  throw new InvalidOptionError('keyring', 'must be a Keyring (createKeyring, keyringFromEnv, ...)')
}

/** Validates encryption options and builds one cipher per listed namespace. */
export function buildCiphers(options: EncryptTierOptions): Map<string, ValueCipher> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', 'must be an object { keyring, namespaces }')
  }
  const keyring = checkKeyring(options.keyring)
  const serializer = options.serializer ?? jsonSerializer
  if (typeof serializer?.serialize !== 'function' || typeof serializer.deserialize !== 'function') {
    throw new InvalidOptionError('serializer', 'must have serialize and deserialize functions')
  }
  const namespaces = options.namespaces
  if (typeof namespaces !== 'object' || namespaces === null || Array.isArray(namespaces)) {
    throw new InvalidOptionError('namespaces', "must map namespace names to 'value' or field paths")
  }
  const ciphers = new Map<string, ValueCipher>()
  for (const [name, what] of Object.entries(namespaces)) {
    validateNamespace(name)
    if (what !== 'value' && !Array.isArray(what)) {
      throw new InvalidOptionError(
        `namespaces.${name}`,
        `must be 'value' or an array of field paths, got ${JSON.stringify(what) ?? String(what)}`,
      )
    }
    ciphers.set(name, new ValueCipher(name, what, keyring, serializer))
  }
  return ciphers
}

/**
 * Wraps a tier (Redis, Prisma) so the values of the listed namespaces, or the listed fields of
 * them, are stored encrypted with AES-256-GCM: a random 96-bit nonce per value, the key id in the
 * envelope, and associated data binding namespace, key and field, so a ciphertext copied to another
 * key fails with `DecryptError` (`E_DECRYPT`). Versions, expiries and tags stay in clear, as the
 * tiers need them. Give the wrapped tiers to `createTieredCache` in place of the plain ones.
 * @throws {InvalidOptionError} | {InvalidKeyError} for bad options, before any I/O
 */
export function encryptTier(tier: CacheTier, options: EncryptTierOptions): CacheTier {
  if (typeof tier?.namespace !== 'function') {
    throw new InvalidOptionError(
      'tier',
      'must be a cache tier (createRedisStore, createPrismaStore)',
    )
  }
  return new EncryptedTier(tier, buildCiphers(options))
}

/** Options of {@link encryptionTransform}. */
export interface EncryptionTransformOptions {
  keyring: Keyring
  /** The namespace this codec serves: bound into every ciphertext. */
  namespace: string
}

/**
 * AES-256-GCM as a `ByteTransform` for core's codec pipeline
 * (`createCodec({ transforms: [compression(), encryptionTransform(...)] })`). The codec contract
 * gives a transform no key, so this binds only the namespace: a ciphertext copied to another key
 * of the same namespace still opens. Prefer {@link encryptTier}, which binds the key too.
 */
export function encryptionTransform(options: EncryptionTransformOptions): ByteTransform {
  const keyring = checkKeyring(options?.keyring)
  const namespace = validateNamespace(options.namespace)
  const binding: Binding = { namespace, key: '', field: '' }
  return {
    name: 'aes-256-gcm',
    encode: (data) => seal(keyring, data, binding),
    decode: (data) => open(keyring, data, binding, { namespace }),
  }
}
