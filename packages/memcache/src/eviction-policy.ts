import { FrequencySketch, hashKey } from './frequency-sketch.js'
import type { EvictionPolicyName } from './options.js'
import { type Slot, SlotList } from './slot.js'

/** What the policy reads of the cache's totals and limits. @internal */
export interface Budget {
  readonly bytes: number
  readonly entries: number
  readonly maxSize: number
  readonly maxEntries: number
}

const WINDOW = 0
const PROBATION = 1
const PROTECTED = 2
/** Share of the limits given to the admission window (Caffeine starts at 1%). */
const WINDOW_SHARE = 0.01
/** Share of the main space kept for entries used again while on probation. */
const PROTECTED_SHARE = 0.8
/** Uses counted per entry of sketch capacity before every count is halved. */
const SAMPLE_PER_ENTRY = 10
/** Counts saturate here (4 bits' worth, as in TinyLFU). */
const MAX_USES = 15
/**
 * A candidate at least this frequent that loses to its victim still gets in once in 128 times,
 * so a victim whose count is inflated (by hash collisions, crafted or not) cannot block every
 * newcomer for good.
 */
const WARM = 6

/**
 * Orders the entries of one cache and chooses what to evict. The cache calls the hooks after it
 * has updated its totals; the policy never removes entries itself.
 *
 * `'tinylfu'` is W-TinyLFU, after Caffeine's design: new entries enter a small LRU window; an
 * entry leaving the window when the cache is full must have been used more often recently than
 * the entry it would displace (the least recent one on probation), or it is evicted instead. The
 * main space is a segmented LRU: entries used again while on probation move to the protected
 * segment, whose overflow goes back to probation. One-off keys (a scan, a batch job) thus pass
 * through the window without flushing the frequently used ones.
 *
 * `'lru'` is the same structure with a window as large as the cache and no counting: the window
 * is one LRU list across all namespaces, and its least recent entry is the victim. (One class for
 * both keeps the hit path monomorphic, and so the two modes comparable in one process.)
 *
 * Frequencies: a count-min sketch remembers how often keys were used while not held (each write
 * of a new entry is a use); an entry held keeps its own count, seeded from the sketch when it
 * is stored and written back to the sketch when it leaves. So a hit touches only the entry
 * itself (no hashing, no sketch lookup), and the counts of held entries are exact. Every use
 * counts towards a sample of 10 per entry of capacity; then all counts halve, the held ones
 * lazily (by the sample period they were last counted in).
 *
 * Every segment is bounded by its share of both limits, bytes and entries. The window always
 * keeps its newest entry, so a value just written can be read back.
 * @internal
 */
export class EvictionPolicy {
  readonly #window = new SlotList()
  readonly #probation = new SlotList()
  readonly #protected = new SlotList()
  readonly #sketch: FrequencySketch
  readonly #budget: Budget
  readonly #windowBytes: number
  readonly #windowEntries: number
  readonly #protectedBytes: number
  readonly #protectedEntries: number
  /** Uses counted in the current sample; the sample period. */
  #uses = 0
  #sampleSize: number
  #epoch = 0
  #random: number
  /** Whether uses are counted and entries must win admission (false: plain LRU). */
  readonly #admission: boolean

  constructor(kind: EvictionPolicyName, budget: Budget, seed: number) {
    this.#admission = kind === 'tinylfu'
    const window = this.#admission ? WINDOW_SHARE : 1
    this.#budget = budget
    this.#windowBytes = budget.maxSize * window
    this.#windowEntries = budget.maxEntries * window
    this.#protectedBytes = budget.maxSize * (1 - window) * PROTECTED_SHARE
    this.#protectedEntries = budget.maxEntries * (1 - window) * PROTECTED_SHARE
    this.#sketch = new FrequencySketch(this.#admission ? Math.min(budget.maxEntries, 1024) : 0)
    this.#sampleSize = SAMPLE_PER_ENTRY * this.#sketch.capacity
    this.#random = seed | 1
  }

  onInsert(slot: Slot): void {
    const budget = this.#budget
    if (this.#admission) this.#seed(slot)
    slot.segment = WINDOW
    this.#window.push(slot)
    // While the cache has room, entries leaving the window join the main space unopposed.
    if (budget.bytes <= budget.maxSize && budget.entries <= budget.maxEntries) {
      while (this.#windowOver()) this.#admit(this.#window.head as Slot)
    }
  }

  onRead(slot: Slot): void {
    if (this.#admission) {
      const uses = this.#usesOf(slot)
      if (uses < MAX_USES) slot.uses = uses + 1
      this.#counted()
    }
    // Most hits land in the protected segment: reordering it is all they need.
    if (slot.segment === PROTECTED) this.#protected.moveToTail(slot)
    else if (slot.segment === WINDOW) this.#window.moveToTail(slot)
    else this.#promote(slot)
  }

  onUpdate(slot: Slot, delta: number): void {
    this.#list(slot.segment).bytes += delta
    this.onRead(slot)
    if (this.#protectedOver()) this.#demote()
  }

  onRemove(slot: Slot): void {
    this.#list(slot.segment).remove(slot)
    // The sketch remembers how popular the key was, should it come back.
    if (this.#admission) this.#sketch.raise(slot.hash, this.#usesOf(slot))
  }

  victim(): Slot | undefined {
    const resident = this.#probation.head ?? this.#protected.head
    if (!this.#windowOver()) return resident ?? this.#window.head
    const candidate = this.#window.head as Slot
    if (resident === undefined || !this.#wins(candidate, resident)) return candidate
    this.#admit(candidate)
    return resident
  }

  /** Starts the count of a new entry from what the sketch remembers of its key, plus this use. */
  #seed(slot: Slot): void {
    const sketch = this.#sketch
    if (this.#budget.entries > sketch.capacity) {
      sketch.ensureCapacity(this.#budget.entries)
      this.#sampleSize = SAMPLE_PER_ENTRY * sketch.capacity
    }
    slot.hash = hashKey(slot.ns.seed, slot.key)
    slot.uses = sketch.increment(slot.hash)
    slot.epoch = this.#epoch
    this.#counted()
  }

  /** The slot's count as of now: halved once per sample period since it was last counted. */
  #usesOf(slot: Slot): number {
    const periods = this.#epoch - slot.epoch
    if (periods === 0) return slot.uses
    slot.epoch = this.#epoch
    slot.uses = periods > 3 ? 0 : slot.uses >>> periods
    return slot.uses
  }

  /** One more use in the sample; at its end, every count halves. */
  #counted(): void {
    if (++this.#uses < this.#sampleSize) return
    this.#sketch.halve()
    this.#epoch++
    this.#uses >>>= 1
  }

  /** Frequency duel: should `candidate` displace `resident`? */
  #wins(candidate: Slot, resident: Slot): boolean {
    const c = this.#usesOf(candidate)
    if (c > this.#usesOf(resident)) return true
    if (c < WARM) return false
    // xorshift32: cheap, and seeded per cache so nobody can predict it
    let x = this.#random
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#random = x
    return (x & 127) === 0
  }

  /** Moves the window's `slot` to the main space, on probation. */
  #admit(slot: Slot): void {
    this.#window.remove(slot)
    slot.segment = PROBATION
    this.#probation.push(slot)
  }

  /** A probation entry used again: it moves to the protected segment. */
  #promote(slot: Slot): void {
    this.#probation.remove(slot)
    slot.segment = PROTECTED
    this.#protected.push(slot)
    if (this.#protectedOver()) this.#demote()
  }

  /** Moves the least recent protected entries back to probation until the segment fits. */
  #demote(): void {
    while (this.#protectedOver()) {
      const slot = this.#protected.head as Slot
      this.#protected.remove(slot)
      slot.segment = PROBATION
      this.#probation.push(slot)
    }
  }

  #windowOver(): boolean {
    const w = this.#window
    return w.count > 1 && (w.bytes > this.#windowBytes || w.count > this.#windowEntries)
  }

  #protectedOver(): boolean {
    const p = this.#protected
    return p.count > 0 && (p.bytes > this.#protectedBytes || p.count > this.#protectedEntries)
  }

  #list(segment: number): SlotList {
    if (segment === WINDOW) return this.#window
    return segment === PROBATION ? this.#probation : this.#protected
  }
}
