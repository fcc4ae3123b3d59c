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
const UNTAGGED_TEXT_END = ',[],"t"]'
/** Reads a non-negative decimal integer ending at `stop`; -1 when the text is anything else. */
function readInt(raw: string, from: number, stop: number): number {
  if (stop <= from || stop - from > 16) return -1
  let n = 0
  for (let i = from; i < stop; i++) {
    const d = raw.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return Number.isSafeInteger(n) ? n : -1
}

/**
 * The common header, `AC1 [<v>,<created>,<expires|null>,[],"t"]`, read without JSON.parse;
 * `undefined` for anything else (tags, bytes, negative times, malformed: the general path decides).
 */
function decodeUntaggedHeader(
  raw: string,
  nl: number,
): [number, number, number | null] | undefined {
  const end = nl - UNTAGGED_TEXT_END.length
  if (!raw.startsWith(UNTAGGED_TEXT_END, end)) return undefined
  const c1 = raw.indexOf(',', MAGIC.length)
  const c2 = c1 === -1 ? -1 : raw.indexOf(',', c1 + 1)
  if (c2 === -1 || c2 >= end) return undefined
  const version = readInt(raw, MAGIC.length, c1)
  const createdAt = readInt(raw, c1 + 1, c2)
  if (version < 1 || createdAt < 0) return undefined
  if (end - c2 - 1 === 4 && raw.startsWith('null', c2 + 1)) return [version, createdAt, null]
  const expiresAt = readInt(raw, c2 + 1, end)
  return expiresAt < 0 ? undefined : [version, createdAt, expiresAt]
}

/**
 * Decodes a stored value.
 * @throws {DecodeError} when the bytes are not an entry this format wrote (a version below 1 or
 * not in plain digits included), or the codec refuses the payload
 */
export function decodeEntry<V>(raw: string, codec: Codec): CacheEntry<V> {
  if (typeof raw !== 'string' || !raw.startsWith(MAGIC))
    throw new DecodeError('stored value is not an Actor Cache entry')
  const nl = raw.indexOf('\n')
  if (nl === -1) throw new DecodeError('stored entry has no header terminator')
  const fast = decodeUntaggedHeader(raw, nl)
  if (fast !== undefined) {
    return Object.freeze({
      value: codec.decode(raw.slice(nl + 1)) as V,
      version: fast[0],
      createdAt: fast[1],
      expiresAt: fast[2],
      tags: NO_TAGS,
    })
  }
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
