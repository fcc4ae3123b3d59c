import { deflateSync, inflateSync } from 'node:zlib'
import type { ByteTransform } from './codec.js'
import { DecodeError, InvalidOptionError } from './errors.js'

const RAW = 0
const DEFLATED = 1

/** Options of {@link compression}. */
export interface CompressionOptions {
  /** Payloads smaller than this many bytes are stored uncompressed. @default 1024 */
  threshold?: number
  /** zlib level 1–9. @default 6 */
  level?: number
  /**
   * Largest decompressed payload accepted, in bytes; a larger one (a decompression bomb planted
   * in a tier) fails with `DecodeError` before it is allocated. @default 64 MiB
   */
  maxOutputLength?: number
}

/**
 * A transform that deflates (zlib format, with its Adler-32 check) payloads of at least
 * `threshold` bytes. One header byte records whether a payload was compressed, so small values
 * pay nothing but that byte.
 */
export function compression(options: CompressionOptions = {}): ByteTransform {
  const threshold = options.threshold ?? 1024
  const level = options.level ?? 6
  const maxOutputLength = options.maxOutputLength ?? 64 * 1024 * 1024
  if (!Number.isSafeInteger(maxOutputLength) || maxOutputLength < 1) {
    throw new InvalidOptionError(
      'maxOutputLength',
      `must be a positive integer, got ${String(maxOutputLength)}`,
    )
  }
  if (!Number.isInteger(threshold) || threshold < 0) {
    throw new InvalidOptionError(
      'threshold',
      `must be a non-negative integer, got ${String(threshold)}`,
    )
  }
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new InvalidOptionError('level', `must be an integer from 1 to 9, got ${String(level)}`)
  }
  return {
    name: 'deflate',
    encode(data) {
      const compress = data.byteLength >= threshold
      const body = compress ? deflateSync(data, { level }) : data
      const out = new Uint8Array(body.byteLength + 1)
      out[0] = compress ? DEFLATED : RAW
      out.set(body, 1)
      return out
    },
    decode(data) {
      const body = data.subarray(1)
      if (data[0] === RAW) return body
      if (data[0] !== DEFLATED) throw new DecodeError('payload has an unknown compression header')
      try {
        return inflateSync(body, { maxOutputLength })
      } catch (error) {
        const tooBig = (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
        throw new DecodeError(
          tooBig
            ? `compressed payload inflates beyond ${maxOutputLength} bytes`
            : 'compressed payload is corrupt',
          { cause: error },
        )
      }
    },
  }
}
