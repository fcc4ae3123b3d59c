/**
 * Fills that run after the read they serve has answered: a loaded value goes back to its caller
 * at once while its compare-and-set into the caches is still on the wire. The cache waits for
 * them when it closes, so none writes into a tier after `close` returned.
 */
export class BackgroundFills {
  readonly #running = new Set<Promise<void>>()

  /** Fills still running. */
  get size(): number {
    return this.#running.size
  }

  /** Tracks `fill` (which must not reject) until it ends. */
  add(fill: Promise<void>): void {
    this.#running.add(fill)
    void fill.then(() => this.#running.delete(fill))
  }

  /** Resolves when every fill running now has ended. */
  async settle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running])
  }
}
