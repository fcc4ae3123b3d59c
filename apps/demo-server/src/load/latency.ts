/** Latencies of one run, kept whole (a 20 s run is some 10⁵ samples) for exact percentiles. */
export interface LatencySummary {
  count: number
  /** Milliseconds. */
  mean: number
  p50: number
  p99: number
  max: number
}

/** Records request latencies and reports their percentiles. */
export class LatencyRecorder {
  #samples = new Float64Array(4096)
  #count = 0
  #sum = 0

  /** Adds one latency in milliseconds. */
  record(ms: number): void {
    if (this.#count === this.#samples.length) {
      const grown = new Float64Array(this.#samples.length * 2)
      grown.set(this.#samples)
      this.#samples = grown
    }
    this.#samples[this.#count++] = ms
    this.#sum += ms
  }

  get count(): number {
    return this.#count
  }

  /** Percentiles by the nearest-rank method; zeros when nothing was recorded. */
  summary(): LatencySummary {
    const n = this.#count
    if (n === 0) return { count: 0, mean: 0, p50: 0, p99: 0, max: 0 }
    const sorted = this.#samples.slice(0, n).sort()
    const rank = (q: number): number => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)] as number
    return {
      count: n,
      mean: this.#sum / n,
      p50: rank(0.5),
      p99: rank(0.99),
      max: sorted[n - 1] as number,
    }
  }
}
