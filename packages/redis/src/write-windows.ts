import { setMaxListeners } from 'node:events'
import type { CommandOptions } from './connection.js'

/** How long writes share one abort signal. */
const WRITE_WINDOW_MS = 100
/**
 * Most writes sharing one abort signal: each write adds a listener to it until it is sent, and
 * an EventTarget checks a new listener against all it holds.
 */
const WRITE_WINDOW_SIZE = 256

interface WriteWindow {
  until: number
  left: number
  options: CommandOptions
}

/**
 * @internal The options a commander sends writes with: node-redis's own timer off, and instead
 * the abort signal shared by the writes sent within one window ({@link WRITE_WINDOW_MS}, at most
 * {@link WRITE_WINDOW_SIZE} writes), aborted once the last of them is past its deadline. A write
 * still waiting to be sent then (a reconnect in progress) is taken off the client's queue, as
 * node-redis's timeout would do it, without a timer and a signal per write. A write is aborted
 * only after its caller got its timeout, whose outcome is unknown either way.
 */
export class WriteWindows {
  readonly #timeout: number
  #window: WriteWindow | undefined

  /** `timeout`: the commander's deadline. */
  constructor(timeout: number) {
    this.#timeout = timeout
  }

  /** The options of a write sent now. */
  options(): CommandOptions {
    const now = Date.now()
    let w = this.#window
    if (w === undefined || now >= w.until || w.left === 0) {
      const controller = new AbortController()
      setMaxListeners(WRITE_WINDOW_SIZE, controller.signal)
      w = {
        until: now + WRITE_WINDOW_MS,
        left: WRITE_WINDOW_SIZE,
        options: Object.freeze({ timeout: 0, abortSignal: controller.signal }),
      }
      this.#window = w
      setTimeout(() => controller.abort(), WRITE_WINDOW_MS + this.#timeout).unref()
    }
    w.left--
    return w.options
  }
}
