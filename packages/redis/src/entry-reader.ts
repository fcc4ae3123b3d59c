import { type CacheEntry, type Codec, channels, DecodeError } from '@actor-cache/core'
import { RESP_TYPES } from 'redis'
import type { Commander } from './connection.js'
import { decodeEntry } from './envelope.js'
import { DELETE_IF_SCRIPT } from './scripts.js'

const TIER = 'redis'
/** Bulk strings as Buffers: the stored bytes, before any UTF-8 decoding. */
const AS_BYTES = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } }

/** Whether anyone listens for read events (timing costs a clock read otherwise wasted). */
const observed = (): boolean => channels.hit.hasSubscribers || channels.miss.hasSubscribers

/** @internal One `get` or `getMany`: when it began, the removals it started (never reject). */
export class ReadBatch {
  readonly t0 = observed() ? performance.now() : 0
  readonly removals: Promise<void>[] = []
  #now: number | undefined

  /** Wall clock, read once per batch and only for entries that expire. */
  get now(): number {
    this.#now ??= Date.now()
    return this.#now
  }
}

/**
 * @internal Turns the raw values of one namespace into entries. A value that cannot be served
 * is a miss and is removed, but only while it is still the same bytes (a concurrent write is
 * never lost): corrupt or foreign bytes (also reported on the error channel as a
 * `DecodeError`), and entries past the expiry their own envelope records (Redis may keep them
 * longer, e.g. when written with another clock).
 */
export class EntryReader {
  readonly #commander: Commander
  readonly #namespace: string
  readonly #codec: Codec

  constructor(commander: Commander, namespace: string, codec: Codec) {
    this.#commander = commander
    this.#namespace = namespace
    this.#codec = codec
  }

  /** The entry `raw` holds, or a miss; removals it starts go to `batch.removals`. */
  read<V>(
    key: string,
    full: string,
    raw: string | null,
    batch: ReadBatch,
  ): CacheEntry<V> | undefined {
    if (raw === null) {
      this.#publishRead('miss', key, batch.t0)
      return undefined
    }
    let entry: CacheEntry<V>
    try {
      entry = decodeEntry<V>(raw, this.#codec)
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error
      this.#reportCorrupt(key, error)
      batch.removals.push(this.#removeIfUnchanged(full, raw))
      return undefined
    }
    if (entry.expiresAt !== null && entry.expiresAt <= batch.now) {
      batch.removals.push(this.#removeIfUnchanged(full, raw))
      this.#publishRead('miss', key, batch.t0)
      return undefined
    }
    this.#publishRead('hit', key, batch.t0)
    return entry
  }

  #reportCorrupt(key: string, error: DecodeError): void {
    if (!channels.error.hasSubscribers) return
    const typed = new DecodeError(`${this.#namespace}:${key}: ${error.message}`, {
      tier: TIER,
      namespace: this.#namespace,
      key,
      cause: error,
    })
    channels.error.publish({
      tier: TIER,
      namespace: this.#namespace,
      key,
      durationMs: 0,
      error: typed,
      operation: 'get',
    })
  }

  /**
   * Removes `full` if it still holds the value that was read as `text`. Failures are ignored:
   * the next read finds the value again and retries.
   */
  async #removeIfUnchanged(full: string, text: string): Promise<void> {
    try {
      // Text without U+FFFD was valid UTF-8: its encoding is the stored bytes exactly.
      if (!text.includes('\uFFFD')) {
        await DELETE_IF_SCRIPT.run(this.#commander, [full], [text])
        return
      }
      // Bytes that are not UTF-8 were read as U+FFFD, so the text cannot name them: read the
      // bytes, and delete those if they still read as the same text (then they are what was
      // judged; anything rewritten meanwhile reads differently and stays).
      const [bytes] = await this.#commander.send<(Buffer | null)[]>(
        ['MGET', full],
        full,
        true,
        undefined,
        AS_BYTES,
      )
      if (!bytes || bytes.toString() !== text) return
      await DELETE_IF_SCRIPT.run(this.#commander, [full], [bytes])
    } catch {
      // best effort
    }
  }

  /** A read event, timed from `t0` (0 when nobody listened as the read began). */
  #publishRead(kind: 'hit' | 'miss', key: string, t0: number): void {
    const ch = channels[kind]
    if (ch.hasSubscribers) {
      ch.publish({
        tier: TIER,
        namespace: this.#namespace,
        key,
        durationMs: t0 === 0 ? 0 : performance.now() - t0,
      })
    }
  }
}
