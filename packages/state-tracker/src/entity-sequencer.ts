import type { ChangeRecord, StreamGapOutcome } from '@actor-cache/core'

/** What became of a record offered to the sequencer. */
export type Offered = 'ready' | 'early' | 'duplicate' | 'unknown'

/** An entity whose next version is missing while later ones wait (or whose start is unknown). */
export interface OpenGap {
  entityType: string
  entityId: string
  /** The version waited for; undefined while the entity's first version is not known yet. */
  expected: number | undefined
  /** When the gap opened (the sequencer's clock, ms). */
  since: number
  /** Backfills tried without closing it. */
  attempts: number
}

/** Counters of a sequencer. */
export interface SequencerCounts {
  /** Records released in order. */
  released: number
  /** Records dropped: a version already released, or one buffered already. */
  duplicates: number
  /** Gaps opened. */
  gapsDetected: number
  /** Gaps closed by a backfill. */
  gapsBackfilled: number
  /** Gaps open now that a backfill did not close (0 when all is well). */
  gapsUnresolved: number
  /** Records waiting for an earlier version. */
  early: number
}

interface EntityState {
  type: string
  id: string
  next: number | undefined
  early: Map<number, ChangeRecord>
  gap: OpenGap | undefined
}

const entityKey = (type: string, id: string): string => `${type}\u0000${id}`

/** Listener of gap transitions. */
export type GapListener = (gap: OpenGap, outcome: StreamGapOutcome) => void

/**
 * Per-entity version order: releases an entity's records as `version == last + 1`, buffers
 * what arrives early, drops what is behind (a duplicate), and tracks gaps: an entity with early
 * records whose next version has not arrived. Synchronous and I/O free: the caller backfills
 * overdue gaps from the log and offers what it read, as it offers anything else.
 */
export class EntitySequencer {
  readonly #entities = new Map<string, EntityState>()
  readonly #ready: ChangeRecord[] = []
  readonly #onGap: GapListener | undefined
  #counts: SequencerCounts = {
    released: 0,
    duplicates: 0,
    gapsDetected: 0,
    gapsBackfilled: 0,
    gapsUnresolved: 0,
    early: 0,
  }
  #backfilling: EntityState | undefined

  constructor(options: { onGap?: GapListener } = {}) {
    this.#onGap = options.onGap
  }

  /** True once the entity's next version is known (set by {@link expect} or a release). */
  known(type: string, id: string): boolean {
    return this.#entities.get(entityKey(type, id))?.next !== undefined
  }

  /**
   * Sets the entity's next version (only while unknown): records below it are dropped, buffered
   * ones from it on are released in order.
   */
  expect(type: string, id: string, next: number, now: number): void {
    const e = this.#entity(type, id)
    if (e.next !== undefined) return
    e.next = next
    for (const version of e.early.keys()) {
      if (version < next) this.#drop(e, version)
    }
    this.#drain(e, now)
  }

  /** The lowest version buffered for the entity, if any. */
  earliest(type: string, id: string): number | undefined {
    const early = this.#entities.get(entityKey(type, id))?.early
    let lowest: number | undefined
    for (const v of early?.keys() ?? []) if (lowest === undefined || v < lowest) lowest = v
    return lowest
  }

  /** Offers one record; released records are collected by {@link take}. */
  offer(r: ChangeRecord, now: number): Offered {
    const e = this.#entity(r.entityType, r.entityId)
    if (e.next !== undefined && r.version < e.next) {
      this.#counts.duplicates++
      return 'duplicate'
    }
    if (e.next === r.version) {
      this.#release(e, r)
      this.#drain(e, now)
      return 'ready'
    }
    if (e.early.has(r.version)) {
      this.#counts.duplicates++
      return 'duplicate'
    }
    e.early.set(r.version, r)
    this.#counts.early++
    this.#openGap(e, now)
    return e.next === undefined ? 'unknown' : 'early'
  }

  /**
   * Offers the records a backfill read for one entity (its history from the missing version);
   * a gap this closes counts as backfilled, one it leaves open as unresolved.
   */
  backfill(type: string, id: string, records: readonly ChangeRecord[], now: number): void {
    const e = this.#entity(type, id)
    this.#backfilling = e
    try {
      for (const r of records) this.offer(r, now)
    } finally {
      this.#backfilling = undefined
    }
    const gap = e.gap
    if (gap === undefined || gap.expected === undefined) return
    gap.attempts++
    gap.since = now
    if (gap.attempts === 1) {
      this.#counts.gapsUnresolved++
      this.#onGap?.(gap, 'unresolved')
    }
  }

  /** Takes the records released since the last call, in release order. */
  take(): ChangeRecord[] {
    return this.#ready.splice(0, this.#ready.length)
  }

  /** Records released and not taken yet. */
  get pending(): number {
    return this.#ready.length
  }

  /** Gaps open since `before` or earlier (all of them when `before` is omitted), oldest first. */
  gaps(before = Number.POSITIVE_INFINITY): OpenGap[] {
    const out: OpenGap[] = []
    for (const e of this.#entities.values()) {
      if (e.gap !== undefined && e.gap.since <= before) out.push(e.gap)
    }
    return out.sort((a, b) => a.since - b.since)
  }

  /** Current counters (a copy). */
  counts(): SequencerCounts {
    return { ...this.#counts }
  }

  #entity(type: string, id: string): EntityState {
    const key = entityKey(type, id)
    let e = this.#entities.get(key)
    if (e === undefined) {
      e = { type, id, next: undefined, early: new Map(), gap: undefined }
      this.#entities.set(key, e)
    }
    return e
  }

  #release(e: EntityState, r: ChangeRecord): void {
    this.#ready.push(r)
    this.#counts.released++
    e.next = r.version + 1
  }

  #drop(e: EntityState, version: number): void {
    e.early.delete(version)
    this.#counts.early--
    this.#counts.duplicates++
  }

  #drain(e: EntityState, now: number): void {
    for (;;) {
      const next = e.next as number
      const r = e.early.get(next)
      if (r === undefined) break
      e.early.delete(next)
      this.#counts.early--
      this.#release(e, r)
    }
    if (e.early.size === 0) this.#closeGap(e)
    else this.#openGap(e, now)
  }

  #openGap(e: EntityState, now: number): void {
    if (e.gap === undefined) this.#startGap(e, now)
    else if (e.gap.expected === undefined) {
      if (e.next !== undefined) this.#startGap(e, e.gap.since)
    } else e.gap.expected = e.next
  }

  #startGap(e: EntityState, since: number): void {
    e.gap = { entityType: e.type, entityId: e.id, expected: e.next, since, attempts: 0 }
    if (e.next === undefined) return
    this.#counts.gapsDetected++
    this.#onGap?.(e.gap, 'detected')
  }

  #closeGap(e: EntityState): void {
    const gap = e.gap
    if (gap === undefined) return
    e.gap = undefined
    if (gap.expected === undefined) return
    if (gap.attempts > 0) this.#counts.gapsUnresolved--
    if (gap.attempts > 0 || this.#backfilling === e) {
      this.#counts.gapsBackfilled++
      this.#onGap?.(gap, 'backfilled')
    }
  }
}
