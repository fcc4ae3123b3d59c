import type { Flights } from './flights.js'
import { BoundedMap } from './util.js'

/** Keys each map remembers; past that, every older change counts for every key. */
const REMEMBERED = 50_000

/**
 * The fill guard: a fill (a load, or a copy from a lower tier or the record into the caches) that
 * started before a write, delete or invalidation of its key must not store what it read before
 * the change.
 *
 * A fill takes the guard's {@link FillGuard.token} when it starts and checks
 * {@link FillGuard.unchanged} before each store. A write leaves a newer version that a fill cannot
 * replace, but a delete or invalidation leaves nothing: a fill already on the wire when one lands
 * is taken back when {@link FillGuard.removedSince} says so. While a delete or invalidation is
 * clearing the tiers one after the other, its keys are held: fills store nothing, since a read
 * could find the old value in a tier not cleared yet and put it back into one already cleared.
 */
export class FillGuard {
  readonly #flights: Pick<Flights<unknown>, 'end' | 'endAll'>
  /** Counts changes; a fill's token is the count when it started. */
  #counter = 0
  /** Every key counts as changed at this count (a change of everything, or forgotten changes). */
  #floor = 0
  /** The last change (write, delete, invalidation) of each key. */
  readonly #touched = new BoundedMap<string, number>(REMEMBERED)
  /** Like #floor, for deletes and invalidations only. */
  #removedFloor = 0
  /** Like #touched, for deletes and invalidations only. */
  readonly #removed = new BoundedMap<string, number>(REMEMBERED)
  /** Keys being removed tier by tier, with the number of removals running. */
  readonly #holding = new Map<string, number>()
  /** Removals of patterns or of the whole namespace running. */
  #holdAll = 0

  /** @param flights ended for a key whenever it changes */
  constructor(flights: Pick<Flights<unknown>, 'end' | 'endAll'>) {
    this.#flights = flights
  }

  /** What a fill starting now takes, to ask about changes since. */
  get token(): number {
    return this.#counter
  }

  /**
   * A write of `key`: loads begun before it will not cache their result, and reads from now on do
   * not join them (they could return what was read before the change).
   */
  written(key: string): void {
    this.#change(key)
    this.#flights.end(key)
  }

  /** A delete or invalidation of `key`: like a write, and fills on the wire are taken back. */
  removed(key: string): void {
    const at = this.#change(key)
    this.#removed.setInPlace(key, at)
    if (this.#removed.size >= REMEMBERED) this.#removedFloor = at
    this.#flights.end(key)
  }

  /** An invalidation of every key (patterns, tags, the namespace, a lost bus message). */
  removedAll(): void {
    this.#floor = ++this.#counter
    this.#removedFloor = this.#counter
    this.#flights.endAll()
  }

  /** True when a fill that started at `token` may store: no change of `key` since, none running. */
  unchanged(key: string, token: number): boolean {
    if (this.#holdAll > 0 || (this.#holding.size > 0 && this.#holding.has(key))) return false
    return this.#floor <= token && (this.#touched.get(key) ?? 0) <= token
  }

  /**
   * True when a fill that started at `token` must be taken back: a delete or invalidation of the
   * key (which, unlike a write, does not leave a newer version behind) came since, or is running.
   */
  removedSince(key: string, token: number): boolean {
    if (this.#holdAll > 0 || (this.#holding.size > 0 && this.#holding.has(key))) return true
    return this.#removedFloor > token || (this.#removed.get(key) ?? 0) > token
  }

  /** A removal of `keys` tier by tier begins: fills store nothing for them until {@link release}. */
  hold(keys: readonly string[]): void {
    for (const key of keys) this.#holding.set(key, (this.#holding.get(key) ?? 0) + 1)
  }

  /** A removal {@link hold} announced is over. */
  release(keys: readonly string[]): void {
    for (const key of keys) {
      const n = (this.#holding.get(key) ?? 0) - 1
      if (n > 0) this.#holding.set(key, n)
      else this.#holding.delete(key)
    }
  }

  /** Like {@link hold}, for every key (patterns, the whole namespace). */
  holdAll(): void {
    this.#holdAll++
  }

  /** A removal {@link holdAll} announced is over. */
  releaseAll(): void {
    this.#holdAll--
  }

  #change(key: string): number {
    const at = ++this.#counter
    // which key is forgotten first does not matter: forgetting any moves the floor past it
    this.#touched.setInPlace(key, at)
    if (this.#touched.size >= REMEMBERED) this.#floor = at
    return at
  }
}
