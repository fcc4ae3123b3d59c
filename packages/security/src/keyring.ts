import { createSecretKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { InvalidOptionError } from '@actor-cache/core'

/** One data key: an id recorded in every value it encrypts, and 32 bytes of key material. */
export interface KeyringKey {
  /** 1–64 characters of letters, digits, `.`, `_`, `-`; stored in each envelope. */
  id: string
  /** 32 bytes, as bytes or base64 / base64url text. */
  key: Uint8Array | string
}

/** Options of {@link createKeyring}. */
export interface KeyringOptions {
  /** Every key whose values must stay readable; old keys stay here until their values are gone. */
  keys: readonly KeyringKey[]
  /** Id of the key new writes use. @default the last key of `keys` */
  primary?: string
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/
const KEY_BYTES = 32
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/

/** Module-private access to key material: only the cipher in this package may call it. */
export let secretOf: (keyring: Keyring, id: string) => KeyObject | undefined

function material(raw: unknown, where: string): KeyObject {
  let bytes: Uint8Array
  if (typeof raw === 'string') {
    const text = raw.trim()
    // the message never quotes the text: it may be a real key with a typo
    if (!BASE64.test(text)) throw new InvalidOptionError(where, 'must be base64 or base64url text')
    bytes = Buffer.from(text.replaceAll('-', '+').replaceAll('_', '/'), 'base64')
  } else if (raw instanceof Uint8Array) {
    bytes = raw
  } else {
    throw new InvalidOptionError(where, `must be 32 bytes or base64 text, got ${typeof raw}`)
  }
  if (bytes.byteLength !== KEY_BYTES) {
    throw new InvalidOptionError(
      where,
      `must be ${KEY_BYTES} bytes (AES-256), got ${bytes.byteLength} bytes`,
    )
  }
  return createSecretKey(Buffer.from(bytes))
}

/**
 * The data keys of the encryption layer. Key material lives in `KeyObject`s held privately; the
 * keyring prints, inspects and serialises as its ids only, so logging it leaks nothing.
 */
export class Keyring {
  /** Id of the key new writes use. */
  readonly primary: string
  readonly #keys: ReadonlyMap<string, KeyObject>

  static {
    secretOf = (keyring, id) => keyring.#keys.get(id)
  }

  /** @throws {InvalidOptionError} naming the option, never the key material */
  constructor(options: KeyringOptions) {
    if (typeof options !== 'object' || options === null || !Array.isArray(options.keys)) {
      throw new InvalidOptionError('keyring.keys', 'must be an array of { id, key }')
    }
    if (options.keys.length === 0) {
      throw new InvalidOptionError('keyring.keys', 'must hold at least one key')
    }
    const keys = new Map<string, KeyObject>()
    options.keys.forEach((k, i) => {
      const where = `keyring.keys[${i}]`
      if (typeof k !== 'object' || k === null) {
        throw new InvalidOptionError(where, 'must be an object { id, key }')
      }
      if (typeof k.id !== 'string' || !KEY_ID.test(k.id)) {
        throw new InvalidOptionError(
          `${where}.id`,
          `must be 1-64 letters, digits, ".", "_" or "-", got ${JSON.stringify(String(k.id)).slice(0, 80)}`,
        )
      }
      if (keys.has(k.id)) throw new InvalidOptionError(`${where}.id`, `"${k.id}" appears twice`)
      keys.set(k.id, material(k.key, `${where}.key`))
    })
    const primary = options.primary ?? options.keys[options.keys.length - 1]?.id
    if (typeof primary !== 'string' || !keys.has(primary)) {
      throw new InvalidOptionError(
        'keyring.primary',
        `must be the id of one of the keys (${[...keys.keys()].join(', ')}), got ${JSON.stringify(String(primary)).slice(0, 80)}`,
      )
    }
    this.primary = primary
    this.#keys = keys
  }

  /** Ids of every key, in the order given. */
  ids(): string[] {
    return [...this.#keys.keys()]
  }

  /** True when values written with key `id` can be read. */
  has(id: string): boolean {
    return this.#keys.has(id)
  }

  /** Only the ids: a keyring in a log line leaks no key material. */
  toJSON(): { primary: string; ids: string[] } {
    return { primary: this.primary, ids: this.ids() }
  }

  /** Only the ids. */
  toString(): string {
    return `Keyring(primary=${this.primary}, ids=${this.ids().join(',')})`
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }
}

/**
 * A keyring from keys you hold. Generate a key with
 * `node -e "console.log(require('node:crypto').randomBytes(32).toString('base64'))"`.
 * @throws {InvalidOptionError}
 */
export function createKeyring(options: KeyringOptions): Keyring {
  return new Keyring(options)
}

/** Options of {@link keyringFromEnv}. */
export interface EnvKeyringOptions {
  /** Variables named `<prefix><ID>` hold base64 keys; `<ID>` becomes the key id. @default 'ACTOR_CACHE_KEY_' */
  prefix?: string
  /** Variable naming the primary key id. @default 'ACTOR_CACHE_PRIMARY_KEY' */
  primaryVariable?: string
}

/**
 * A keyring from environment variables: `ACTOR_CACHE_KEY_2025A=<base64>` gives key id `2025A`;
 * `ACTOR_CACHE_PRIMARY_KEY=2025A` picks the primary (else the last id in sorted order).
 * @throws {InvalidOptionError} naming the variable, never its value
 */
export function keyringFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: EnvKeyringOptions = {},
): Keyring {
  const prefix = options.prefix ?? 'ACTOR_CACHE_KEY_'
  const primaryVariable = options.primaryVariable ?? 'ACTOR_CACHE_PRIMARY_KEY'
  const names = Object.keys(env)
    .filter((n) => n.startsWith(prefix) && n.length > prefix.length)
    .sort()
  if (names.length === 0) {
    throw new InvalidOptionError('env', `no variable named ${prefix}<ID> holds a key`)
  }
  const keys = names.map((n) => ({ id: n.slice(prefix.length), key: env[n] ?? '' }))
  const primary = env[primaryVariable]
  try {
    return new Keyring(primary === undefined ? { keys } : { keys, primary })
  } catch (error) {
    // name the variable instead of the array index
    const e = error as InvalidOptionError
    const m = /^keyring\.keys\[(\d+)\]/.exec(e.option ?? '')
    if (m) {
      throw new InvalidOptionError(names[Number(m[1])] as string, e.message.replace(/^[^:]*: /, ''))
    }
    throw error
  }
}

/**
 * A keyring from a JSON file `{ "primary": "k2", "keys": { "k1": "<base64>", "k2": "<base64>" } }`
 * (keep it readable by the service user only).
 * @throws {InvalidOptionError}
 */
export async function keyringFromFile(path: string): Promise<Keyring> {
  let doc: unknown
  try {
    doc = JSON.parse(await readFile(path, 'utf8'))
  } catch (error) {
    throw new InvalidOptionError('keyring file', `cannot read ${path} as JSON`, { cause: error })
  }
  const d = doc as { primary?: unknown; keys?: unknown }
  if (typeof d !== 'object' || d === null || typeof d.keys !== 'object' || d.keys === null) {
    throw new InvalidOptionError(
      'keyring file',
      `${path} must hold { "keys": { "<id>": "<base64>" } }`,
    )
  }
  const keys = Object.entries(d.keys as Record<string, string>).map(([id, key]) => ({ id, key }))
  return new Keyring(typeof d.primary === 'string' ? { keys, primary: d.primary } : { keys })
}

/**
 * A keyring whose keys a KMS hands out (e.g. data keys it unwraps) once, at startup: the callback
 * returns the keyring options; call again and swap keyrings to pick up a rotation.
 */
export async function keyringFromKms(load: () => Promise<KeyringOptions>): Promise<Keyring> {
  if (typeof load !== 'function') throw new InvalidOptionError('load', 'must be a function')
  return new Keyring(await load())
}
