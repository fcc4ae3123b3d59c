import type { CacheEntry, ResolvedSet } from '@actor-cache/core'
import type { NamespaceState } from './shared.js'

/**
 * What the cache holds under one key of one namespace. A slot is also the node of the intrusive
 * list that orders it for eviction, so ordering an entry allocates nothing.
 *
 * A write over a held key allocates nothing that outlives it: such allocations (one per write,
 * kept until the key's next write) were most of a write's cost, in garbage collection. So the
 * slot keeps the fields of the last write itself, and makes the frozen `CacheEntry` readers get
 * on the first read after that write; later reads share it until the next write (a value
 * overwritten before anyone read it never gets one). Times are kept as pairs of small integers
 * (see {@link splitTime}), since a number field holding a time gets a new heap number on every
 * write.
 * @internal
 */
export class Slot {
  /** Neighbours in the slot's list (a circular list: the list's root closes it). */
  prev: Slot = this
  next: Slot = this
  /** Which list of the eviction policy holds the slot. */
  segment = 0
  /** Key hash for the frequency sketch (0 when the policy does not count frequencies). */
  hash = 0
  /** Recent uses, as of sample period `epoch` (policies that count frequencies only). */
  uses = 0
  epoch = 0
  value: unknown = undefined
  version = 0
  tags: readonly string[] = NO_TAGS
  #createdHigh = 0
  #createdLow = 0
  #expiresHigh = 0
  #expiresLow = NEVER
  /** The entry of the last write, once a read has asked for it. */
  #entry: CacheEntry | undefined = undefined

  constructor(
    readonly key: string,
    readonly ns: NamespaceState,
    /** Estimated bytes, counted against the shared budget. */
    public size: number,
  ) {}

  /** Epoch ms of the last write (or the time it gave). */
  get createdAt(): number {
    return joinTime(this.#createdHigh, this.#createdLow)
  }

  /** Epoch ms at which the entry expires; `Infinity` for never. */
  get expiresAt(): number {
    return joinTime(this.#expiresHigh, this.#expiresLow)
  }

  /** Replaces the stored write; readers of the old entry keep it. */
  store(value: unknown, version: number, opts: ResolvedSet): void {
    this.value = value
    this.version = version
    this.tags = opts.tags
    const created = opts.createdAt
    this.#createdHigh = splitTime(created)
    this.#createdLow = lowOf(created, this.#createdHigh)
    this.retime(opts.expiresAt ?? Number.POSITIVE_INFINITY)
  }

  /** Gives the entry a new expiry (`Infinity` for none), same value and version. */
  retime(expiresAt: number): void {
    this.#expiresHigh = splitTime(expiresAt)
    this.#expiresLow = lowOf(expiresAt, this.#expiresHigh)
    this.#entry = undefined
  }

  /** The frozen entry of the last write: the same object for every read until the next write. */
  entry(): CacheEntry {
    return this.#entry ?? this.#makeEntry()
  }

  #makeEntry(): CacheEntry {
    const expiresAt = this.expiresAt
    const entry: CacheEntry = Object.freeze({
      value: this.value,
      version: this.version,
      createdAt: this.createdAt,
      expiresAt: expiresAt === Number.POSITIVE_INFINITY ? null : expiresAt,
      tags: this.tags,
    })
    this.#entry = entry
    return entry
  }
}

const NO_TAGS: readonly string[] = Object.freeze([])

/** A time `t` that is a safe integer is kept as `high * SPLIT + low`, both small integers. */
const SPLIT = 2 ** 26
/** `low` of no time (no expiry). */
const NEVER = -1
/** `low` of a time kept as is in `high` (not a safe integer: correct, only not allocation-free). */
const EXACT = -2

/**
 * The high part of time `t`. A safe integer splits into two integers small enough for V8 to
 * store in place (`|high| <= 2 ** 27`, `0 <= low < 2 ** 26`); `Infinity` and other numbers
 * (fractions from an injected clock, -0) are marked by their low part.
 */
function splitTime(t: number): number {
  if (t === Number.POSITIVE_INFINITY) return 0
  return Number.isSafeInteger(t) && !Object.is(t, -0) ? Math.floor(t / SPLIT) : t
}

/** The low part of time `t` whose high part is `high` (see {@link splitTime}). */
function lowOf(t: number, high: number): number {
  if (t === Number.POSITIVE_INFINITY) return NEVER
  return Number.isSafeInteger(t) && !Object.is(t, -0) ? t - high * SPLIT : EXACT
}

function joinTime(high: number, low: number): number {
  if (low >= 0) return high * SPLIT + low
  return low === NEVER ? Number.POSITIVE_INFINITY : high
}

/**
 * A list of slots from least (head) to most (tail) recently used, with the count and bytes of its
 * slots. Every operation is O(1).
 * @internal
 */
export class SlotList {
  /** Closes the circle: `root.next` is the head, `root.prev` the tail. Never a real entry. */
  readonly #root = new Slot('', undefined as unknown as NamespaceState, 0)
  count = 0
  bytes = 0

  /** The least recently used slot. */
  get head(): Slot | undefined {
    const first = this.#root.next
    return first === this.#root ? undefined : first
  }

  /** Appends `slot` as the most recently used one. */
  push(slot: Slot): void {
    const root = this.#root
    const last = root.prev
    slot.prev = last
    slot.next = root
    last.next = slot
    root.prev = slot
    this.count++
    this.bytes += slot.size
  }

  /** Unlinks `slot`, which must be in this list. */
  remove(slot: Slot): void {
    slot.prev.next = slot.next
    slot.next.prev = slot.prev
    slot.prev = slot
    slot.next = slot
    this.count--
    this.bytes -= slot.size
  }

  /** Makes `slot`, which must be in this list, the most recently used one. */
  moveToTail(slot: Slot): void {
    const root = this.#root
    const last = root.prev
    if (last === slot) return
    slot.prev.next = slot.next
    slot.next.prev = slot.prev
    slot.prev = last
    slot.next = root
    last.next = slot
    root.prev = slot
  }
}
