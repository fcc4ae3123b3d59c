import { ClosedError, InvalidOptionError } from '@actor-cache/core'
import type { AnyRedisClient, Commander } from './connection.js'

/**
 * One kind of notification: whoever waits is woken by a message; with nobody waiting, the next
 * wait returns at once (a message may have announced something the waiter has not read yet, so a
 * notification between a read and the next wait is never slept through).
 */
export class Signal {
  readonly #waiters = new Set<() => void>()
  #pending = false

  /** Wakes every waiter, or marks the next wait to return at once. */
  fire(): void {
    if (this.#waiters.size === 0) {
      this.#pending = true
      return
    }
    for (const wake of [...this.#waiters]) wake()
  }

  /** Resolves on {@link fire}, after `ms`, or on `signal`'s abort. */
  wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#pending || signal?.aborted || ms <= 0) {
      this.#pending = false
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      this.#waiters.add(done)
    })
  }

  /** Wakes every waiter (on close). */
  release(): void {
    for (const wake of [...this.#waiters]) wake()
  }
}

/** Checks the arguments of a wait. @throws {InvalidOptionError} */
export function checkWait(ms: unknown, signal: unknown): void {
  if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) {
    throw new InvalidOptionError('ms', `must be a non-negative number of ms, got ${String(ms)}`)
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidOptionError('signal', 'must be an AbortSignal')
  }
}

/**
 * The pub/sub side of a change transport: one subscriber connection (a duplicate of the client,
 * made on first need) listening on the `wake` and `published` channels, and coalesced wake
 * PUBLISHes. On a cluster the regular pub/sub is used (PUBLISH reaches every node), as the
 * invalidation bus does. A reconnected subscriber fires both signals: messages sent while it was
 * away are lost, and a spurious wake costs one empty read.
 * @internal
 */
export class ChangeNotifier {
  /** Fires on a `wake` message (the relay waits on it). */
  readonly wake = new Signal()
  /** Signals of the readers, each fired on a `published` message. */
  readonly readers = new Set<Signal>()
  readonly #commander: Commander
  readonly #client: AnyRedisClient
  readonly #channels: { wake: string; published: string }
  #subscriber: AnyRedisClient | undefined
  #subscribed: Promise<void> | undefined
  #notifyQueued = false
  #closed = false
  /** PUBLISHes of {@link notify} that failed (best effort: never thrown). */
  notifyFailures = 0

  constructor(
    commander: Commander,
    client: AnyRedisClient,
    channels: { wake: string; published: string },
  ) {
    this.#commander = commander
    this.#client = client
    this.#channels = channels
  }

  /** Subscribes unless subscribed; a failed attempt is retried on the next call. */
  subscribe(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('change transport'))
    this.#subscribed ??= this.#subscribe().catch((error: unknown) => {
      this.#subscribed = undefined
      throw error
    })
    return this.#subscribed
  }

  async #subscribe(): Promise<void> {
    const sub = this.#client.duplicate()
    this.#subscriber = sub
    sub.on('error', () => {})
    let ready = false
    const reconnected = (): void => {
      if (!ready) return
      this.wake.fire()
      for (const r of this.readers) r.fire()
    }
    // 'ready' on a single server; a cluster reports its nodes with 'node-ready'.
    sub.on('ready', reconnected)
    sub.on('node-ready', reconnected)
    try {
      await this.#commander.within(async () => {
        await sub.connect()
        await sub.subscribe(this.#channels.wake, () => this.wake.fire())
        await sub.subscribe(this.#channels.published, () => {
          for (const r of this.readers) r.fire()
        })
      }, 'SUBSCRIBE')
    } catch (error) {
      destroyQuietly(sub)
      if (this.#subscriber === sub) this.#subscriber = undefined
      throw error
    }
    ready = true
    if (this.#closed) destroyQuietly(sub)
  }

  /** PUBLISH `wake` once for every call made in this turn of the event loop; errors counted. */
  notify(): void {
    if (this.#closed || this.#notifyQueued) return
    this.#notifyQueued = true
    setImmediate(() => {
      this.#notifyQueued = false
      if (this.#closed) return
      const channel = this.#channels.wake
      this.#commander.send(['PUBLISH', channel, ''], channel).catch(() => {
        this.notifyFailures++
      })
    })
  }

  /** Tells readers everywhere that records were published; errors counted, not thrown. */
  async published(): Promise<void> {
    const channel = this.#channels.published
    try {
      await this.#commander.send(['PUBLISH', channel, ''], channel)
    } catch {
      // Readers wait with a timeout: a lost notification only delays them.
      this.notifyFailures++
    }
  }

  close(): void {
    this.#closed = true
    this.wake.release()
    for (const r of this.readers) r.release()
    // destroy, not close: close() would wait for pending replies, forever if Redis hangs
    if (this.#subscriber) destroyQuietly(this.#subscriber)
    this.#subscriber = undefined
  }
}

/** Destroys a connection this transport made, ignoring that it may be gone already. */
export function destroyQuietly(client: AnyRedisClient): void {
  try {
    client.destroy()
  } catch {
    // already closed
  }
}
