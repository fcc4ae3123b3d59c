/** A read of a key in flight, which later reads of the key may join. */
export interface Flight<V> {
  readonly read: Promise<V | undefined>
  /** Started without a loader: a read with one does not join it. */
  readonly loaderless: boolean
  /** The fill the read waits for before it stops being joinable (see {@link Flights.holdRead}). */
  fill: Promise<void> | undefined
  /**
   * Set when the read answered and is held while its value is cached: until when that value is
   * fresh (clock of the cache); such a read counts as an L1 hit for those that join it.
   */
  freshUntil: number | undefined
}

/**
 * Single flight per key in this process: the reads of a key share one tier walk (and load), and
 * a key has at most one loader run and one refresh at a time, whatever the number of callers. A
 * change of the key ends its flights ({@link Flights.end}, called by the fill guard): reads from
 * then on start their own instead of joining one that read before the change.
 */
export class Flights<V> {
  /** The read of each key in flight (tier walk, record, loader), joined by later reads. */
  readonly #reads = new Map<string, Flight<V>>()
  readonly #loading = new Map<string, Promise<V | undefined>>()
  readonly #refreshing = new Map<string, Promise<V | undefined>>()

  /**
   * The read of `key` in flight that a new read may join at `now`; `loads`: the new read has a
   * loader.
   */
  joinable(key: string, loads: boolean, now: number): Flight<V> | undefined {
    const flight = this.#reads.get(key)
    // a read without a loader may answer "not found" where this one would load
    if (flight === undefined || (loads && flight.loaderless)) return undefined
    // a read that answered and is held for its fill is joined only while its value is fresh
    if (flight.freshUntil !== undefined && now >= flight.freshUntil) return undefined
    return flight
  }

  /**
   * Makes `read` the read of `key` in flight, until it settles (and any fill {@link holdRead}
   * attached to it has ended) or the key changes.
   */
  startRead(key: string, read: Promise<V | undefined>, options: { loaderless: boolean }): void {
    const flight: Flight<V> = {
      read,
      loaderless: options.loaderless,
      fill: undefined,
      freshUntil: undefined,
    }
    this.#reads.set(key, flight)
    const done = (): void => {
      const fill = flight.fill
      if (fill !== undefined) {
        flight.fill = undefined
        void fill.then(done)
        return
      }
      if (this.#reads.get(key) === flight) this.#reads.delete(key)
    }
    read.then(done, done)
  }

  /**
   * The read of `key` in flight answered before the caching of its value (`fill`, which never
   * rejects) ends: it stays joinable until then, and while its value is fresh (before
   * `freshUntil`), so that reads meanwhile do not load again.
   */
  holdRead(key: string, fill: Promise<void>, freshUntil: number): void {
    const flight = this.#reads.get(key)
    if (flight === undefined) return
    flight.fill = fill
    flight.freshUntil = freshUntil
  }

  /** The loader run of `key` in flight, else the one `start` begins. */
  load(key: string, start: () => Promise<V | undefined>): Promise<V | undefined> {
    return once(this.#loading, key, start)
  }

  /**
   * The refresh of `key` in flight, else the one `start` begins. Refreshes run apart from loads:
   * a refresh may skip (another instance holds the lock) and answer nothing, which must not
   * become a reader's answer.
   */
  refresh(key: string, start: () => Promise<V | undefined>): Promise<V | undefined> {
    return once(this.#refreshing, key, start)
  }

  /** True while a load or a refresh of `key` runs. */
  busy(key: string): boolean {
    return this.#loading.has(key) || this.#refreshing.has(key)
  }

  /** `key` changed: later reads, loads and refreshes do not join the ones in flight. */
  end(key: string): void {
    this.#reads.delete(key)
    this.#loading.delete(key)
    this.#refreshing.delete(key)
  }

  /** Every key changed. */
  endAll(): void {
    this.#reads.clear()
    this.#loading.clear()
    this.#refreshing.clear()
  }
}

function track<V>(runs: Map<string, Promise<V>>, key: string, run: Promise<V>): void {
  runs.set(key, run)
  const done = (): void => {
    if (runs.get(key) === run) runs.delete(key)
  }
  run.then(done, done)
}

function once<V>(runs: Map<string, Promise<V>>, key: string, start: () => Promise<V>): Promise<V> {
  const running = runs.get(key)
  if (running !== undefined) return running
  const run = start()
  track(runs, key, run)
  return run
}
