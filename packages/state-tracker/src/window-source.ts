import type { ChangeSource, FeedPosition, SourceRead } from './change-source.js'
import type { RelayWindow } from './relay-window.js'

/**
 * A {@link ChangeSource} that fills a {@link RelayWindow} from a background loop, which runs
 * while at least one subscription retains the source: the first `retain` starts it, the last
 * `release` stops it, and a loop started again waits for the stopped one to end. `retain`
 * resolves once the loop calls `ready`. Subclasses write the loop and `nudge`.
 */
export abstract class WindowSource implements ChangeSource {
  protected readonly window: RelayWindow
  #users = 0
  #running: Promise<void> | undefined
  /** The loop that ran last (ended, or ending after a halt). */
  #last: Promise<void> = Promise.resolve()
  #ready: Promise<void> | undefined
  #stop: AbortController | undefined

  constructor(window: RelayWindow) {
    this.window = window
  }

  /** The loop: fills the window until `signal` aborts; calls `ready` once subscriptions may start. */
  protected abstract run(signal: AbortSignal, ready: () => void): Promise<void>

  abstract nudge(): void

  retain(): Promise<void> {
    this.#users++
    if (this.#running === undefined) {
      const stop = new AbortController()
      this.#stop = stop
      let ready: () => void = () => {}
      this.#ready = new Promise<void>((resolve) => {
        ready = resolve
      })
      // a loop halted a moment ago may still be reading: the new one starts after it
      const previous = this.#last
      this.#running = previous.then(() => this.run(stop.signal, ready)).finally(() => ready())
      this.#last = this.#running
    }
    return this.#ready as Promise<void>
  }

  release(): void {
    if (this.#users === 0) return
    this.#users--
    if (this.#users === 0) void this.#halt()
  }

  /** Stops the loop and waits for it to end (subscriptions should be closed first). */
  async close(): Promise<void> {
    this.#users = 0
    await this.#halt()
  }

  head(): number {
    return this.window.head()
  }

  tail(): number {
    return this.window.tail()
  }

  read(from: number, max: number): SourceRead {
    return this.window.read(from, max)
  }

  checkpointAt(p: number): FeedPosition {
    return this.window.checkpointAt(p)
  }

  wait(from: number, ms: number, signal: AbortSignal): Promise<void> {
    return this.window.wait(from, ms, signal)
  }

  async #halt(): Promise<void> {
    this.#stop?.abort()
    this.#running = undefined
    await this.#last
  }
}
