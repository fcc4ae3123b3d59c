/** One evaluation's readings: counters (monotonic) by series id, and the gauges of the moment. */
export interface Sample {
  readonly at: number
  readonly counters: ReadonlyMap<string, number>
}

/**
 * Samples of counters over time, so an alert can take the increase over its window the way
 * Prometheus's `increase()` does (without extrapolation): the newest reading minus the reading at
 * the start of the window (the oldest one kept when the history is shorter than the window).
 */
export class SampleWindow {
  readonly #samples: Sample[] = []
  readonly #keep: number

  /** `keep`: the longest window asked for, in ms. */
  constructor(keep: number) {
    this.#keep = keep
  }

  add(sample: Sample): void {
    this.#samples.push(sample)
    // keep one sample at or before the start of the longest window
    while (this.#samples.length > 2 && (this.#samples[1] as Sample).at <= sample.at - this.#keep) {
      this.#samples.shift()
    }
  }

  /** Increase of counter `id` over the `window` ms before the newest sample. */
  increase(id: string, window: number): number {
    const last = this.#samples.at(-1)
    if (last === undefined) return 0
    let base: Sample | undefined
    for (const s of this.#samples) {
      if (s.at <= last.at - window) base = s
      else break
    }
    base ??= this.#samples[0] as Sample
    const now = last.counters.get(id) ?? 0
    const then = base === last ? 0 : (base.counters.get(id) ?? 0)
    // a counter that went down was reset: count from zero (like Prometheus)
    return now >= then ? now - then : now
  }

  /** Ids of the counters of the newest sample. */
  ids(): Iterable<string> {
    return this.#samples.at(-1)?.counters.keys() ?? []
  }
}
