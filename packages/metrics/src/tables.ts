/** One labelled series of plain numbers, updated by event handlers and read at scrape. */
export interface Series {
  readonly labels: readonly string[]
  value: number
}

const SEP = '\u0000'

/**
 * Counters by label values, kept as plain numbers: an event handler pays a map lookup and an
 * increment; the Prometheus objects are filled from here only when someone scrapes.
 */
export class CounterTable {
  readonly #series = new Map<string, Series>()

  constructor(readonly labelNames: readonly string[]) {}

  /** The series of `labels` (created at zero). Handlers on hot paths keep the result. */
  series(labels: readonly string[]): Series {
    const id = labels.join(SEP)
    let s = this.#series.get(id)
    if (s === undefined) {
      s = { labels, value: 0 }
      this.#series.set(id, s)
    }
    return s
  }

  inc(labels: readonly string[], by = 1): void {
    this.series(labels).value += by
  }

  values(): IterableIterator<Series> {
    return this.#series.values()
  }

  /** Sum of the series whose label `name` equals `value` (every series without a filter). */
  sum(filter?: { readonly name: string; readonly value: string }): number {
    const index = filter === undefined ? -1 : this.labelNames.indexOf(filter.name)
    let total = 0
    for (const s of this.#series.values()) {
      if (index < 0 || s.labels[index] === filter?.value) total += s.value
    }
    return total
  }
}

/** Observations of one labelled histogram series: counts per bucket (not cumulative), sum. */
export interface BucketSeries {
  readonly labels: readonly string[]
  /** `counts[i]`: observations in (bounds[i-1], bounds[i]]; the last one is +Inf. */
  readonly counts: number[]
  count: number
  sum: number
}

/** Histogram data kept beside prom-client's, so alerts can take quantiles over a window. */
export class BucketTable {
  readonly #series = new Map<string, BucketSeries>()

  constructor(
    readonly labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {}

  observe(labels: readonly string[], value: number): void {
    const id = labels.join(SEP)
    let s = this.#series.get(id)
    if (s === undefined) {
      s = { labels, counts: new Array<number>(this.bounds.length + 1).fill(0), count: 0, sum: 0 }
      this.#series.set(id, s)
    }
    let i = 0
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++
    s.counts[i] = (s.counts[i] as number) + 1
    s.count++
    s.sum += value
  }

  values(): IterableIterator<BucketSeries> {
    return this.#series.values()
  }
}
