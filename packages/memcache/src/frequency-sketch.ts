/**
 * How often keys were used recently, approximately, in a few bytes per entry of capacity: a
 * count-min sketch of 4 rows with saturating counters (at most 15). Its owner halves every counter
 * ({@link halve}) after a sample of uses, so old popularity fades (TinyLFU's "reset").
 *
 * Counters are bytes. The 4 counters of one key sit in one 64-byte block (16 counters per row),
 * so a key costs one cache line. The table holds 8 counters per entry of capacity.
 * @internal
 */
export class FrequencySketch {
  #table: Uint8Array = new Uint8Array(64)
  #blockMask = 0
  /** Entries the table is sized for (a power of two). */
  capacity = 0

  constructor(capacity: number) {
    this.ensureCapacity(capacity)
  }

  /**
   * Grows the table to count about `entries` keys well. Growing forgets every count (a new
   * table cannot place the old counts); the table never shrinks.
   */
  ensureCapacity(entries: number): void {
    const wanted = 2 ** Math.ceil(Math.log2(Math.max(8, Math.min(entries, 2 ** 28))))
    if (wanted <= this.capacity) return
    this.capacity = wanted
    const blocks = wanted >>> 3
    this.#table = new Uint8Array(blocks * 64)
    this.#blockMask = blocks - 1
  }

  /** Counts one use of the key with this hash (see {@link hashKey}); returns its new estimate. */
  increment(hash: number): number {
    return this.#update(hash, 0)
  }

  /** Raises the key's counters to at least `count` (at most 15); returns its new estimate. */
  raise(hash: number, count: number): number {
    return this.#update(hash, count)
  }

  /** Estimated recent uses of the key with this hash: never below the truth, at most 15. */
  frequency(hash: number): number {
    const t = this.#table
    const h = mix(hash)
    const base = (h & this.#blockMask) << 6
    const o = mix(h ^ 0x5bd1e995)
    return Math.min(
      t[base + (o & 15)] as number,
      t[base + 16 + ((o >>> 8) & 15)] as number,
      t[base + 32 + ((o >>> 16) & 15)] as number,
      t[base + 48 + ((o >>> 24) & 15)] as number,
    )
  }

  /** Halves every counter, four at a time. */
  halve(): void {
    const words = new Uint32Array(this.#table.buffer)
    for (let i = 0; i < words.length; i++) words[i] = ((words[i] as number) >>> 1) & 0x7f7f7f7f
  }

  /** Adds one to each counter of the key (`floor` 0), or raises each to `floor`. */
  #update(hash: number, floor: number): number {
    const t = this.#table
    const h = mix(hash)
    const base = (h & this.#blockMask) << 6
    const o = mix(h ^ 0x5bd1e995)
    let min = 15
    for (let row = 0; row < 4; row++) {
      const i = base + (row << 4) + ((o >>> (row << 3)) & 15)
      const c = t[i] as number
      const next = floor === 0 ? Math.min(15, c + 1) : Math.max(c, Math.min(15, floor))
      t[i] = next
      if (next < min) min = next
    }
    return min
  }
}

/** murmur3's 32-bit finalizer: spreads every input bit over the whole word. */
function mix(x: number): number {
  let h = x ^ (x >>> 16)
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) | 0
}

/**
 * A 32-bit hash of a key (FNV-1a over its UTF-16 code units), seeded so that equal keys of
 * different namespaces, or of different caches, count apart. Computed once per stored entry.
 */
export function hashKey(seed: number, key: string): number {
  let h = seed ^ 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return h | 0
}
