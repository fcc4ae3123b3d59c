/**
 * A cheap clock for the hit path. `Date.now()` costs tens to hundreds of nanoseconds on virtual
 * machines, more than the rest of an L1 hit. This clock re-reads `Date.now()` every 64th call,
 * and after the event loop has had 1 ms to run, so a reading is at most 64 calls or about 1 ms
 * (plus however long the current synchronous burst lasts) behind. Only expiry checks on reads use
 * it: writes compute expiry times from the exact clock.
 */
export class CoarseClock {
  #now = 0
  #fresh = false
  #calls = 0
  readonly #expire = (): void => {
    this.#fresh = false
  }

  now(): number {
    if (this.#fresh && (++this.#calls & 63) !== 0) return this.#now
    this.#now = Date.now()
    if (!this.#fresh) {
      this.#fresh = true
      setTimeout(this.#expire, 1).unref()
    }
    return this.#now
  }
}
