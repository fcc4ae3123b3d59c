import type { CacheEntry } from '@actor-cache/core'
import type { NamespaceState } from './shared.js'

/**
 * What the cache holds under one key of one namespace. A slot is also the node of the intrusive
 * list that orders it for eviction, so ordering an entry allocates nothing.
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
  constructor(
    readonly key: string,
    readonly ns: NamespaceState,
    public entry: CacheEntry,
    /** Estimated bytes, counted against the shared budget. */
    public size: number,
  ) {}
}

const ROOT_ENTRY: CacheEntry = Object.freeze({
  value: undefined,
  version: 0,
  createdAt: 0,
  expiresAt: null,
  tags: Object.freeze([]),
})

/**
 * A list of slots from least (head) to most (tail) recently used, with the count and bytes of its
 * slots. Every operation is O(1).
 * @internal
 */
export class SlotList {
  /** Closes the circle: `root.next` is the head, `root.prev` the tail. Never a real entry. */
  readonly #root = new Slot('', undefined as unknown as NamespaceState, ROOT_ENTRY, 0)
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
