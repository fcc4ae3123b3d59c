/**
 * Single flight per key in this process: the reads of a key share one tier walk (and load), and
 * a key has at most one loader run and one refresh at a time, whatever the number of callers. A
 * change of the key ends its flights ({@link Flights.end}, called by the fill guard): reads from
 * then on start their own instead of joining one that read before the change.
 */
export class Flights<V> {
  /** The read of each key in flight (tier walk, record, loader), joined by later reads. */
  readonly #reads = new Map<string, Promise<V | undefined>>()
  /** Reads started without a loader. */
  readonly #loaderless = new WeakSet<Promise<V | undefined>>()
  /** Fills a read in flight waits for before it stops being joinable. */
  readonly #holds = new WeakMap<Promise<V | undefined>, Promise<void>>()
  /** Until when the value of a held read is fresh (clock of the cache). */
  readonly #freshUntil = new WeakMap<Promise<V | undefined>, number>()
  readonly #loading = new Map<string, Promise<V | undefined>>()
  readonly #refreshing = new Map<string, Promise<V | undefined>>()

  /**
   * The read of `key` in flight that a new read may join at `now`; `loads`: the new read has a
   * loader.
   */
  joinable(key: string, loads: boolean, now: number): Promise<V | undefined> | undefined {
    const flight = this.#reads.get(key)
    // a read without a loader may answer "not found" where this one would load
    if (flight === undefined || (loads && this.#loaderless.has(flight))) return undefined
    // a read that answered and is held for its fill is joined only while its value is fresh
    const until = this.#freshUntil.get(flight)
    if (until !== undefined && now >= until) return undefined
    return flight
  }

  /**
   * Makes `read` the read of `key` in flight, until it settles (and any fill {@link holdRead}
   * attached to it has ended) or the key changes.
   */
  startRead(key: string, read: Promise<V | undefined>, options: { loaderless: boolean }): void {
    if (options.loaderless) this.#loaderless.add(read)
    this.#reads.set(key, read)
    const done = (): void => {
      const fill = this.#holds.get(read)
      if (fill !== undefined) {
        this.#holds.delete(read)
        void fill.then(done)
        return
      }
      if (this.#reads.get(key) === read) this.#reads.delete(key)
    }
    read.then(done, done)
  }

  /**
   * The read of `key` in flight answered before the caching of its value (`fill`, which never
   * rejects) ends: it stays joinable until then, and while its value is fresh (before
   * `freshUntil`), so that reads meanwhile do not load again.
   */
  holdRead(key: string, fill: Promise<void>, freshUntil: number): void {
    const read = this.#reads.get(key)
    if (read === undefined) return
    this.#holds.set(read, fill)
    this.#freshUntil.set(read, freshUntil)
  }

  /** True for a read that answered (or is about to) and is held while its value is cached. */
  held(read: Promise<V | undefined>): boolean {
    return this.#freshUntil.has(read)
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
