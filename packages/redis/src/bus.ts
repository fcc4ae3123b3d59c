import { randomUUID } from 'node:crypto'
import {
  ClosedError,
  channels,
  type DeliveredInvalidation,
  deliver,
  type InvalidationBus,
  type InvalidationListener,
  type InvalidationMessage,
  InvalidOptionError,
  SequenceTracker,
  TierUnavailableError,
  validateInvalidationMessage,
} from '@actor-cache/core'
import {
  type AnyRedisClient,
  type RedisComponentOptions,
  resolveComponentOptions,
} from './connection.js'

const TIER = 'redis'

/** Options of {@link createRedisBus}. */
export interface RedisBusOptions extends RedisComponentOptions {
  /**
   * Connection for SUBSCRIBE. Defaults to a duplicate of `client` that the bus connects and
   * closes itself.
   */
  subscriber?: AnyRedisClient
  /** Unique id of this instance. @default a random UUID */
  instanceId?: string
  /** How long to wait for the probe that proves a re-subscription is live, in ms. @default 2000 */
  probeTimeout?: number
}

interface Wire {
  /** format version */
  v: 1
  /** sender */
  s: string
  /** sender sequence */
  q: number
  /** sent at */
  t: number
  /** sender epoch: a restarted sender starts a new sequence */
  e?: string
  /** message, or a probe nonce */
  m?: InvalidationMessage
  p?: string
}

/**
 * Invalidation bus over Redis pub/sub (channel `<prefix>:invalidate`).
 *
 * Pub/sub is at-most-once, so the bus tells listeners to drop what it coordinates (`onReset`)
 * whenever a loss cannot be ruled out: after the subscriber connection comes back (once a probe
 * message proves the subscription is live again, so nothing lost before it can be missed), on a
 * gap in a sender's sequence numbers, and on a message it cannot read. Messages never come back
 * to their sender.
 */
export class RedisBus implements InvalidationBus {
  readonly instanceId: string
  readonly #commander
  readonly #client: AnyRedisClient
  readonly #channel: string
  readonly #listeners = new Set<InvalidationListener>()
  readonly #tracker = new SequenceTracker()
  readonly #probeTimeout: number
  #subscriber: AnyRedisClient | undefined
  readonly #ownsSubscriber: boolean
  #seq = 0
  /** Differs between two buses with the same instance id (a restarted process). */
  readonly #epoch = randomUUID().slice(0, 8)
  #closed = false
  #started: Promise<void> | undefined
  #readyOnce = false
  #probe: { nonce: string; timer: NodeJS.Timeout } | undefined
  /** Pings waiting to hear their probe back, by nonce. */
  readonly #pings = new Map<string, { heard: () => void; fail: (error: Error) => void }>()

  constructor(options: RedisBusOptions) {
    const resolved = resolveComponentOptions(options, TIER)
    this.#commander = resolved.commander
    this.#client = resolved.client
    this.#channel = `${resolved.prefix}:invalidate`
    this.instanceId = options.instanceId ?? randomUUID()
    if (
      typeof this.instanceId !== 'string' ||
      this.instanceId.length === 0 ||
      this.instanceId.length > 128
    ) {
      throw new InvalidOptionError(
        'instanceId',
        'must be a non-empty string of at most 128 characters',
      )
    }
    this.#probeTimeout = options.probeTimeout ?? 2000
    this.#subscriber = options.subscriber
    this.#ownsSubscriber = options.subscriber === undefined
  }

  /** The pub/sub channel. */
  get channel(): string {
    return this.#channel
  }

  /**
   * Subscribes (`subscribe` starts it too). Awaiting it tells the caller the bus is live. Bounded
   * by the command timeout; a failure is reported to listeners as a reset and retried every
   * second until it succeeds, which is reported as a reset again.
   * @throws {TierUnavailableError} when the subscription could not be made in time
   */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('invalidation bus'))
    this.#started ??= this.#start().catch((error: unknown) => {
      this.#started = undefined
      if (!this.#closed) {
        this.#failedOnce = true
        this.#reset(`not subscribed: ${(error as Error).message}`)
        if (this.#listeners.size > 0)
          setTimeout(() => void this.start().catch(() => undefined), 1000).unref()
      }
      throw error
    })
    return this.#started
  }

  #failedOnce = false
  readonly #onReadyEvent = (): void => this.#onReady()
  readonly #onError = (): void => {}
  readonly #onMessage = (raw: string): void => this.#onRaw(raw)

  async #start(): Promise<void> {
    let sub = this.#subscriber
    if (!sub) {
      sub = this.#client.duplicate()
      this.#subscriber = sub
      sub.on('error', this.#onError)
      // 'ready' on a single server; a cluster reports its nodes with 'node-ready'.
      sub.on('ready', this.#onReadyEvent)
      sub.on('node-ready', this.#onReadyEvent)
    } else if (!this.#listening) {
      sub.on('error', this.#onError)
      sub.on('ready', this.#onReadyEvent)
      sub.on('node-ready', this.#onReadyEvent)
    }
    this.#listening = true
    const subscriber = sub
    await this.#commander.within(async () => {
      if (this.#ownsSubscriber && !subscriber.isOpen) await subscriber.connect()
      await subscriber.subscribe(this.#channel, this.#onMessage)
    }, 'SUBSCRIBE')
    if (this.#closed) return
    this.#readyOnce = true
    // Messages published while earlier attempts failed are gone.
    if (this.#failedOnce) this.#reset('subscribed')
  }

  #listening = false

  async publish(message: InvalidationMessage): Promise<void> {
    if (this.#closed) throw new ClosedError('invalidation bus')
    const m = validateInvalidationMessage(message)
    const wire: Wire = {
      v: 1,
      s: this.instanceId,
      e: this.#epoch,
      q: ++this.#seq,
      t: Date.now(),
      m,
    }
    await this.#commander.send(['PUBLISH', this.#channel, JSON.stringify(wire)], this.#channel)
  }

  /**
   * Proves the bus works end to end, for health checks: publishes a probe that other instances
   * ignore and waits until this bus's own subscription hears it back (subscribing first if it was
   * not). Nothing is invalidated anywhere.
   * @throws {TierUnavailableError} when Redis refuses or does not answer, or the probe does not
   * come back within `probeTimeout`
   * @throws {ClosedError} once closed
   */
  async ping(): Promise<void> {
    if (this.#closed) throw new ClosedError('invalidation bus')
    await this.start()
    const nonce = randomUUID()
    const heard = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pings.delete(nonce)
        reject(
          new TierUnavailableError(
            `redis bus ping not heard back within ${this.#probeTimeout} ms (Redis or the subscription is down)`,
            { tier: TIER },
          ),
        )
      }, this.#probeTimeout)
      timer.unref()
      const settle = (then: () => void) => {
        clearTimeout(timer)
        this.#pings.delete(nonce)
        then()
      }
      this.#pings.set(nonce, {
        heard: () => settle(resolve),
        fail: (error) => settle(() => reject(error)),
      })
    })
    const wire: Wire = { v: 1, s: this.instanceId, q: 0, t: Date.now(), p: nonce }
    const published = this.#commander
      .send(['PUBLISH', this.#channel, JSON.stringify(wire)], this.#channel)
      .then(
        () => undefined,
        (error: unknown) => this.#pings.get(nonce)?.fail(error as Error),
      )
    // whichever ends first: the probe heard back, or not heard within probeTimeout
    await Promise.all([published, heard])
  }

  subscribe(listener: InvalidationListener): () => void {
    if (this.#closed) return () => false
    this.#listeners.add(listener)
    void this.start().catch(() => undefined)
    return () => this.#listeners.delete(listener)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#listeners.clear()
    if (this.#probe) clearTimeout(this.#probe.timer)
    for (const ping of [...this.#pings.values()]) ping.fail(new ClosedError('invalidation bus'))
    const sub = this.#subscriber
    if (!sub) return
    sub.off('ready', this.#onReadyEvent)
    sub.off('node-ready', this.#onReadyEvent)
    if (this.#ownsSubscriber) {
      // destroy, not close: close() waits for pending replies, forever if Redis hangs
      sub.destroy()
    } else {
      await this.#commander
        .within(() => sub.unsubscribe(this.#channel), 'UNSUBSCRIBE')
        .catch(() => undefined)
      sub.off('error', this.#onError)
    }
  }

  #onReady(): void {
    // The first 'ready' is the initial connection; later ones are reconnections.
    if (!this.#readyOnce || this.#closed) return
    this.#sendProbe()
  }

  #sendProbe(): void {
    if (this.#probe) clearTimeout(this.#probe.timer)
    const nonce = randomUUID()
    const timer = setTimeout(() => {
      // Not heard back yet: the subscription may still be coming back. Try again.
      if (!this.#closed) this.#sendProbe()
    }, this.#probeTimeout)
    timer.unref()
    this.#probe = { nonce, timer }
    const wire: Wire = { v: 1, s: this.instanceId, q: 0, t: Date.now(), p: nonce }
    this.#commander
      .send(['PUBLISH', this.#channel, JSON.stringify(wire)], this.#channel)
      .catch(() => undefined)
  }

  #reset(reason: string): void {
    this.#tracker.clear()
    for (const l of this.#listeners) l.onReset(reason)
  }

  #onRaw(raw: string): void {
    let wire: Wire
    try {
      wire = JSON.parse(raw) as Wire
      if (wire?.v !== 1 || typeof wire.s !== 'string' || !Number.isSafeInteger(wire.q))
        throw new Error('bad envelope')
    } catch (error) {
      if (channels.error.hasSubscribers) {
        channels.error.publish({
          tier: TIER,
          namespace: '',
          durationMs: 0,
          error,
          operation: 'bus-receive',
        })
      }
      this.#reset('unreadable message')
      return
    }
    if (wire.s === this.instanceId) {
      if (wire.p !== undefined) this.#pings.get(wire.p)?.heard()
      if (wire.p !== undefined && this.#probe?.nonce === wire.p) {
        clearTimeout(this.#probe.timer)
        this.#probe = undefined
        this.#reset('resubscribed')
      }
      return
    }
    if (wire.p !== undefined) return
    const verdict = this.#tracker.observe(`${wire.s}/${wire.e ?? ''}`, wire.q)
    if (verdict === 'duplicate') return
    let message: InvalidationMessage
    try {
      message = validateInvalidationMessage(wire.m ?? {})
    } catch {
      this.#reset('invalid message')
      return
    }
    if (verdict === 'gap') {
      this.#reset(`sequence gap from ${wire.s}`)
      return
    }
    const delivered: DeliveredInvalidation = Object.freeze({
      ...message,
      senderId: wire.s,
      seq: wire.q,
      sentAt: wire.t,
    })
    for (const l of this.#listeners) deliver(l, delivered)
  }
}

/**
 * Creates the Redis invalidation bus.
 * @example
 * const bus = createRedisBus({ client })
 * bus.subscribe({ onInvalidate: (m) => dropFromL1(m), onReset: () => l1.clearAll() })
 * await bus.publish({ namespace: 'primary_core', keys: ['actor:123'] })
 */
export function createRedisBus(options: RedisBusOptions): RedisBus {
  return new RedisBus(options)
}
