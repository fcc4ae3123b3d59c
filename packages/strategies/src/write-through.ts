import {
  type CacheStore,
  InvalidOptionError,
  type SetResult,
  type WriteTracking,
} from '@actor-cache/core'
import type { NamespaceParts } from './namespace-context.js'
import type { VersionedCopy } from './tier-stack.js'
import { announceLogged, versionOf, type Write, writeTracked } from './writes.js'

/**
 * Write-through: the store of record takes the write (and gives its version; `expectedVersion` is
 * compare-and-set there), then every cache tier gets that version. Without a record, the
 * coordinating cache tier (L2, else L1) orders versions. A refused write leaves the caches as
 * they were.
 */
export class WriteThrough<V> {
  readonly #tiers: NamespaceParts<V>['tiers']
  readonly #tracking: WriteTracking | undefined

  constructor(parts: Pick<NamespaceParts<V>, 'tiers' | 'ctx'>) {
    this.#tiers = parts.tiers
    this.#tracking = parts.ctx.tracking
  }

  async write(w: Write<V>): Promise<SetResult> {
    const { key, value, expiresAt, tags, createdAt } = w
    const versioning = versionOf(w.options)
    const { caches, coord: c, l1sync, record } = this.#tiers
    if (record !== undefined) {
      const track = w.track
      const r = await this.#tiers.recordWrite(key, () =>
        track === undefined
          ? record.set(key, value, { ttl: Infinity, tags, ...versioning })
          : writeTracked(
              record,
              key,
              { kind: 'set', value, options: { ttl: Infinity, tags } },
              track,
            ),
      )
      if (!r.applied) return r
      try {
        await this.#copyRecorded(key, value, { version: r.version, expiresAt, createdAt, tags })
      } finally {
        if (track !== undefined) announceLogged(this.#tracking)
      }
      return r
    }
    const coord = caches[c]
    if (coord === undefined)
      throw new InvalidOptionError('tiers', 'the cache has no tier to write to')
    const r =
      coord === l1sync
        ? l1sync.setSync(key, value, { expiresAt, createdAt, tags, ...versioning })
        : await this.#tiers.recordWrite(key, () =>
            coord.set(key, value, { expiresAt, createdAt, tags, ...versioning }),
          )
    if (!r.applied) return r
    for (let i = 0; i < caches.length; i++) {
      if (i !== c)
        await this.#tiers.put(i, key, value, { version: r.version, expiresAt, createdAt, tags })
    }
    return r
  }

  /**
   * Writes a value the record just took (at `entry.version`) into every cache tier. A tier may
   * hold a higher version that is not the record's: a loaded value, whose versions count loads
   * while the record lacks the key. Such a copy is replaced (delete, then write), and the record
   * is read once more: if it moved past this write meanwhile, the copies just written may be older
   * than another instance's and are dropped again.
   */
  async #copyRecorded(key: string, value: V, entry: VersionedCopy): Promise<void> {
    const { caches, l1sync, record } = this.#tiers
    let replaced = false
    for (let i = caches.length - 1; i >= 0; i--) {
      const tier = caches[i] as CacheStore<V>
      try {
        if (tier === l1sync) {
          if (l1sync.setSync(key, value, entry).applied) continue
          l1sync.deleteSync(key)
          l1sync.setSync(key, value, entry)
        } else {
          if ((await tier.set(key, value, entry)).applied) continue
          await tier.delete(key)
          await tier.set(key, value, entry)
        }
        replaced = true
      } catch (error) {
        this.#tiers.report(tier.tier, 'set', error, key)
        this.#tiers.uncertain(key)
      }
    }
    if (!replaced) return
    let current: number | undefined
    try {
      current = (await record?.get(key))?.version
    } catch (error) {
      this.#tiers.report(record?.tier ?? 'record', 'get', error, key)
    }
    if (current !== entry.version) for (const tier of caches) await this.#tiers.drop(tier, key)
  }
}
