import { createHash } from 'node:crypto'
import { InvalidOptionError, isActorCacheError } from '@actor-cache/core'
import { maskValue, type SensitiveFields } from './masking.js'
import { OPERATIONS, type Operation, type Principal } from './policy.js'

/** How a call ended. */
export type AuditOutcome = 'ok' | 'error' | 'denied' | 'rate_limited'

/** One access record: who did what to which namespace and keys, when, and how it ended. */
export interface AuditEvent {
  /** Epoch milliseconds when the call started. */
  time: number
  principal: string
  roles: readonly string[]
  operation: Operation
  /** The method called (`get`, `set`, `invalidate`, ...). */
  method: string
  /** Namespace, or `'*'` for calls that reach every namespace (tags, flush, close). */
  namespace: string
  /** Keys named by the call (hashed or left out, as configured). */
  keys?: readonly string[]
  outcome: AuditOutcome
  /** Error code for `error`, `denied` and `rate_limited`. */
  code?: string
  /** How long the call took, in ms (not for calls refused before they ran). */
  durationMs?: number
  /** Written value with sensitive fields masked (only with `includeValues`). */
  value?: unknown
}

/** A pino-compatible logger (pino, or anything with `info` and `warn` taking an object first). */
export interface AuditLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
}

/** Options of the guard's access audit. */
export interface AuditOptions {
  /** Where events go: a function, or a pino-compatible logger (`info`; `warn` for refusals). */
  sink: ((event: AuditEvent) => void) | AuditLogger
  /**
   * Fraction of calls recorded, per operation (0–1); refusals (`denied`, `rate_limited`) use
   * `refused`. @default 1 for every operation and for refusals
   */
  sample?: Partial<Record<Operation | 'refused', number>>
  /** How keys appear: as they are, as SHA-256 prefixes, or not at all. @default 'clear' */
  keys?: 'clear' | 'hash' | 'omit'
  /** Record written values (with `sensitive` fields masked). @default false */
  includeValues?: boolean
  /** Sensitive fields masked in recorded values. @default {} */
  sensitive?: SensitiveFields
  /** Random source for sampling (tests). @default Math.random */
  random?: () => number
}

/** Records access events with sampling; internal to the guard. */
export class Auditor {
  readonly #emit: (event: AuditEvent) => void
  /** Rates by operation bit index, then refusals last. */
  readonly #rates: Float64Array
  readonly #keys: 'clear' | 'hash' | 'omit'
  readonly #values: boolean
  readonly #sensitive: SensitiveFields
  readonly #random: () => number

  constructor(options: AuditOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('audit', 'must be an object { sink, ... }')
    }
    const sink = options.sink
    if (typeof sink === 'function') this.#emit = sink
    else if (typeof sink?.info === 'function' && typeof sink.warn === 'function') {
      this.#emit = (e) =>
        e.outcome === 'denied' || e.outcome === 'rate_limited'
          ? sink.warn({ audit: e }, 'actor-cache access refused')
          : sink.info({ audit: e }, 'actor-cache access')
    } else {
      throw new InvalidOptionError(
        'audit.sink',
        'must be a function or a logger with info and warn',
      )
    }
    this.#rates = new Float64Array(OPERATIONS.length + 1).fill(1)
    for (const [op, rate] of Object.entries(options.sample ?? {})) {
      const i = op === 'refused' ? OPERATIONS.length : OPERATIONS.indexOf(op as Operation)
      if (i < 0) {
        throw new InvalidOptionError(
          `audit.sample.${op}`,
          `unknown operation; use ${OPERATIONS.join(', ')} or refused`,
        )
      }
      if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
        throw new InvalidOptionError(
          `audit.sample.${op}`,
          `must be from 0 to 1, got ${String(rate)}`,
        )
      }
      this.#rates[i] = rate
    }
    const keys = options.keys ?? 'clear'
    if (keys !== 'clear' && keys !== 'hash' && keys !== 'omit') {
      throw new InvalidOptionError(
        'audit.keys',
        `must be 'clear', 'hash' or 'omit', got ${String(keys)}`,
      )
    }
    this.#keys = keys
    this.#values = options.includeValues === true
    this.#sensitive = options.sensitive ?? {}
    this.#random = options.random ?? Math.random
  }

  /** Should this call be recorded? */
  sampled(op: Operation): boolean {
    const rate = this.#rates[OPERATIONS.indexOf(op)] as number
    return rate >= 1 || (rate > 0 && this.#random() < rate)
  }

  /** Should this refusal be recorded? */
  sampledRefusal(): boolean {
    const rate = this.#rates[OPERATIONS.length] as number
    return rate >= 1 || (rate > 0 && this.#random() < rate)
  }

  /** Emits one event; a failing sink never fails the cache call. */
  record(
    principal: Principal,
    operation: Operation,
    method: string,
    namespace: string,
    keys: readonly string[] | undefined,
    started: number,
    outcome: AuditOutcome,
    error?: unknown,
    value?: { value: unknown },
  ): void {
    const event: AuditEvent = {
      time: started,
      principal: principal.id,
      roles: principal.roles,
      operation,
      method,
      namespace,
      outcome,
    }
    if (keys !== undefined && this.#keys !== 'omit') {
      event.keys = this.#keys === 'clear' ? keys : keys.map(hashKey)
    }
    if (error !== undefined) event.code = isActorCacheError(error) ? error.code : 'E_UNKNOWN'
    if (outcome === 'ok' || outcome === 'error') event.durationMs = Date.now() - started
    if (this.#values && value !== undefined) {
      event.value = maskValue(this.#sensitive, namespace, value.value)
    }
    try {
      this.#emit(event)
    } catch {
      // an audit sink must not turn a served call into a failure
    }
  }
}

const hashKey = (key: string): string =>
  createHash('sha256').update(String(key)).digest('hex').slice(0, 16)
