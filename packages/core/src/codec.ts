import { ActorCacheError, DecodeError } from './errors.js'
import { jsonSerializer } from './json-serializer.js'

/**
 * Turns values into text and back. Implementations must round-trip exactly or throw
 * `SerializationError` at encode time, and must never build objects with a polluted prototype
 * from stored text (throw `DecodeError` instead). They should refuse values nested deeper than
 * `MAX_VALUE_DEPTH` both ways, as the default one does, so all tiers agree.
 */
export interface Serializer {
  /** Identifier recorded by tiers that store the serializer name. */
  readonly name: string
  /** @throws {SerializationError} */
  serialize(value: unknown): string
  /** @throws {DecodeError} */
  deserialize(text: string): unknown
}

/** A reversible transformation of bytes (compression, encryption). */
export interface ByteTransform {
  readonly name: string
  encode(data: Uint8Array): Uint8Array
  /** @throws {DecodeError} (or a subclass) when the bytes are not its output */
  decode(data: Uint8Array): Uint8Array
}

/**
 * A namespace's full codec: serializer then transforms (compress, encrypt), and the reverse on
 * read. Without transforms the stored form is text; with transforms it is bytes.
 */
export interface Codec {
  readonly name: string
  encode(value: unknown): string | Uint8Array
  decode(data: string | Uint8Array): unknown
}

/** Options of {@link createCodec}. */
export interface CodecOptions {
  /** @default jsonSerializer */
  serializer?: Serializer
  /** Applied in order on encode (e.g. `[compression(), encryption]`), in reverse on decode. @default [] */
  transforms?: readonly ByteTransform[]
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Builds a codec: serialize, then each transform in order; decode reverses the pipeline. */
export function createCodec(options: CodecOptions = {}): Codec {
  const serializer = options.serializer ?? jsonSerializer
  const transforms = [...(options.transforms ?? [])]
  const name = [serializer.name, ...transforms.map((t) => t.name)].join('+')
  if (transforms.length === 0) {
    return {
      name,
      encode: (value) => serializer.serialize(value),
      decode(data) {
        if (typeof data !== 'string') {
          try {
            return serializer.deserialize(decoder.decode(data))
          } catch (error) {
            if (error instanceof ActorCacheError) throw error
            throw new DecodeError('stored bytes are not UTF-8 text', { cause: error })
          }
        }
        return serializer.deserialize(data)
      },
    }
  }
  return {
    name,
    encode(value) {
      let data: Uint8Array = encoder.encode(serializer.serialize(value))
      for (const t of transforms) data = t.encode(data)
      return data
    },
    decode(data) {
      if (typeof data === 'string') {
        throw new DecodeError(`codec ${name} expects bytes, found text`)
      }
      let bytes = data
      for (let i = transforms.length - 1; i >= 0; i--)
        bytes = (transforms[i] as ByteTransform).decode(bytes)
      let text: string
      try {
        text = decoder.decode(bytes)
      } catch (error) {
        throw new DecodeError('decoded payload is not UTF-8 text', { cause: error })
      }
      return serializer.deserialize(text)
    },
  }
}

/** The default codec: {@link jsonSerializer} without transforms. */
export const defaultCodec: Codec = createCodec()
