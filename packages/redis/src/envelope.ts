import { type CacheEntry, type Codec, DecodeError } from '@actor-cache/core'

/**
 * How an entry is stored in Redis: one string value,
 *
 *     AC1 [<version>,<createdAt>,<expiresAt|null>,<tags JSON>,"t"|"b"]\n<payload>
 *
 * The header is a JSON array (Lua reads the version with one pattern match); the payload is the
 * namespace codec's output, as is when it is text ("t") or base64 when it is bytes ("b").
 * Versioned so the format can change without misreading old entries.
 */
export const MAGIC = 'AC1 ['

/** Everything after the version: the part a Lua script appends to `AC1 [<version>`. */
export function encodeTail(
  codec: Codec,
  value: unknown,
  createdAt: number,
  expiresAt: number | null,
  tags: readonly string[],
): string {
  const data = codec.encode(value)
  const text = typeof data === 'string'
  const payload = text
    ? data
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')
  return `,${createdAt},${expiresAt === null ? 'null' : expiresAt},${JSON.stringify(tags)},"${text ? 't' : 'b'}"]\n${payload}`
}

const NO_TAGS: readonly string[] = Object.freeze([])
/** What follows the expiry in the common header: no tags, a text payload, the terminator. */
const UNTAGGED_TEXT_END = ',[],"t"]\n'
const COMMA = 44

/** Where the last {@link readDigits} stopped: the index of the first character after the digits. */
let digitsEnd = 0

/**
 * Reads a non-negative decimal integer of 1 to 16 digits starting at `from`, leaving its end in
 * {@link digitsEnd}; -1 when there are no digits, more than 16, or the number is not a safe integer.
 */
function readDigits(raw: string, from: number): number {
  const stop = Math.min(raw.length, from + 17)
  let n = 0
  let i = from
  for (; i < stop; i++) {
    const d = raw.charCodeAt(i) - 48
    if (d < 0 || d > 9) break
    n = n * 10 + d
  }
  digitsEnd = i
  return i === from || i - from > 16 || !Number.isSafeInteger(n) ? -1 : n
}

/**
 * The version an entry's header gives, as the scripts read it (`^AC1 [<digits>,`); 0 for
 * anything else, and for more digits than a safe integer has (left to the scripts).
 */
export function storedVersion(raw: string): number {
  if (!raw.startsWith(MAGIC)) return 0
  const version = readDigits(raw, MAGIC.length)
  return version > 0 && raw.charCodeAt(digitsEnd) === COMMA ? version : 0
}

/**
 * The common entry, `AC1 [<v>,<created>,<expires|null>,[],"t"]\n<payload>`, read in one pass over
 * its header without JSON.parse and without allocating anything but the entry; `undefined` for
 * anything else (tags, bytes, negative times, malformed: the general path decides).
 */
function decodeUntagged<V>(raw: string, codec: Codec): CacheEntry<V> | undefined {
  const version = readDigits(raw, MAGIC.length)
  if (version < 1 || raw.charCodeAt(digitsEnd) !== COMMA) return undefined
  const createdAt = readDigits(raw, digitsEnd + 1)
  if (createdAt < 0 || raw.charCodeAt(digitsEnd) !== COMMA) return undefined
  let at = digitsEnd + 1
  let expiresAt: number | null = null
  if (raw.startsWith('null', at)) {
    at += 4
  } else {
    expiresAt = readDigits(raw, at)
    if (expiresAt < 0) return undefined
    at = digitsEnd
  }
  if (!raw.startsWith(UNTAGGED_TEXT_END, at)) return undefined
  return Object.freeze({
    value: codec.decode(raw.slice(at + UNTAGGED_TEXT_END.length)) as V,
    version,
    createdAt,
    expiresAt,
    tags: NO_TAGS,
  })
}

/**
 * Decodes a stored value.
 * @throws {DecodeError} when the bytes are not an entry this format wrote (a version below 1 or
 * not in plain digits included), or the codec refuses the payload
 */
export function decodeEntry<V>(raw: string, codec: Codec): CacheEntry<V> {
  if (typeof raw !== 'string' || !raw.startsWith(MAGIC))
    throw new DecodeError('stored value is not an Actor Cache entry')
  const fast = decodeUntagged<V>(raw, codec)
  if (fast !== undefined) return fast
  const nl = raw.indexOf('\n')
  if (nl === -1) throw new DecodeError('stored entry has no header terminator')
  let header: unknown
  try {
    header = JSON.parse(raw.slice(4, nl))
  } catch (error) {
    throw new DecodeError('stored entry header is not valid JSON', { cause: error })
  }
  if (
    !Array.isArray(header) ||
    header.length !== 5 ||
    !Number.isSafeInteger(header[0]) ||
    header[0] < 1 ||
    // the version as the Lua scripts read it (digits only), or they would disagree about it
    !raw.startsWith(`${MAGIC}${header[0]},`) ||
    typeof header[1] !== 'number' ||
    !(header[2] === null || typeof header[2] === 'number') ||
    !Array.isArray(header[3]) ||
    !header[3].every((t: unknown) => typeof t === 'string') ||
    (header[4] !== 't' && header[4] !== 'b')
  ) {
    throw new DecodeError('stored entry header is malformed')
  }
  const payload = raw.slice(nl + 1)
  const value = codec.decode(
    header[4] === 't' ? payload : new Uint8Array(Buffer.from(payload, 'base64')),
  ) as V
  return Object.freeze({
    value,
    version: header[0] as number,
    createdAt: header[1] as number,
    expiresAt: header[2] as number | null,
    tags: Object.freeze(header[3] as string[]),
  })
}
