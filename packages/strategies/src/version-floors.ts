import { hasVersionFloors, type VersionFloor } from '@actor-cache/core'
import type { RecordStore } from './policy.js'

/** How long a floor read may take before a write that can do without it stops waiting (ms). */
const FLOOR_WAIT = 1_000
/** After a floor read failed or was late, writes skip the record for this long (ms). */
const RECORD_DOWN_FOR = 1_000

/**
 * Where a key's versions stand when the caches keep no version head for it: the store of
 * record's version (a tombstone's included), read for all the keys that ask in one tick with one
 * statement (`versionFloors` when the record has it, else `getMany`).
 *
 * A write that need not know the exact version (untracked, without `expectedVersion`) does not wait on
 * a record that cannot answer: past {@link FLOOR_WAIT}, or while the record was just found down,
 * it gets a floor from the clock (epoch ms × 1000), above any version the key had, so the write is
 * accepted and ordered after the ones before it; that key's versions then count on from there.
 */
export class VersionFloors<V> {
  readonly #record: RecordStore<V>
  readonly #now: () => number
  #batch: Map<string, ((r: VersionFloor | Error) => void)[]> | undefined
  #downUntil = 0
  #lastClock = 0

  constructor(record: RecordStore<V>, now: () => number) {
    this.#record = record
    this.#now = now
  }

  /**
   * The floor of `key`. With `exact`, the record's answer or its error; otherwise, when the
   * record is slow or down, a floor from the clock.
   */
  async of(key: string, exact: boolean): Promise<VersionFloor> {
    if (!exact && this.#now() < this.#downUntil) return this.#fromClock()
    const read = this.#read(key)
    if (exact) return read
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), FLOOR_WAIT)
      timer.unref()
    })
    try {
      const floor = await Promise.race([read.catch(() => undefined), late])
      if (floor !== undefined) return floor
    } finally {
      clearTimeout(timer)
    }
    this.#downUntil = this.#now() + RECORD_DOWN_FOR
    return this.#fromClock()
  }

  #fromClock(): VersionFloor {
    this.#lastClock = Math.max(this.#lastClock + 1, Math.floor(this.#now()) * 1000)
    return { version: this.#lastClock, exists: true }
  }

  #read(key: string): Promise<VersionFloor> {
    return new Promise<VersionFloor>((resolve, reject) => {
      const settle = (r: VersionFloor | Error) => (r instanceof Error ? reject(r) : resolve(r))
      if (this.#batch === undefined) {
        this.#batch = new Map()
        queueMicrotask(() => void this.#send())
      }
      const waiting = this.#batch.get(key)
      if (waiting === undefined) this.#batch.set(key, [settle])
      else waiting.push(settle)
    })
  }

  async #send(): Promise<void> {
    const batch = this.#batch as Map<string, ((r: VersionFloor | Error) => void)[]>
    this.#batch = undefined
    const keys = [...batch.keys()]
    let floors: VersionFloor[] | Error
    try {
      const record = this.#record
      floors = hasVersionFloors(record)
        ? await record.versionFloors(keys)
        : (await record.getMany(keys)).map((e) =>
            e === undefined ? { version: 0, exists: false } : { version: e.version, exists: true },
          )
    } catch (error) {
      this.#downUntil = this.#now() + RECORD_DOWN_FOR
      floors = error instanceof Error ? error : new Error(String(error))
    }
    keys.forEach((key, i) => {
      const r = floors instanceof Error ? floors : (floors[i] as VersionFloor)
      for (const settle of batch.get(key) ?? []) settle(r)
    })
  }
}
