/**
 * The stores an encrypted tier hands out: values of one namespace encrypted on the way down and
 * decrypted on the way up, with the capabilities of the store they wrap (versioned deletes,
 * tracked writes, version heads and floors) and no others.
 */
import {
  type CacheEntry,
  type CacheStore,
  type ChangeBuilder,
  type ChangeRecordingStore,
  type ClaimDeleteOptions,
  type ClaimResult,
  type ClaimSetOptions,
  hasTrackedBatches,
  hasVersionedDeletes,
  hasVersionFloors,
  hasVersionHeads,
  InvalidOptionError,
  isChangeRecordingStore,
  type PriorState,
  type SerializationError,
  type SetManyItem,
  type SetOptions,
  type SetResult,
  type TrackedBatchItem,
  type TrackedBatchResult,
  type TrackedBatchStore,
  type TrackedWrite,
  type TrackedWriteResult,
  type VersionedDelete,
  type VersionedDeleteStore,
  type VersionFloor,
  type VersionFloorStore,
  type VersionHeadStore,
} from '@actor-cache/core'
import type { ValueCipher } from './encryption.js'

/** A store whose values are encrypted on the way down and decrypted on the way up. */
class EncryptedStore<V> implements CacheStore<V> {
  readonly tier: string
  readonly namespace: string
  protected readonly inner: CacheStore<unknown>
  protected readonly cipher: ValueCipher

  constructor(inner: CacheStore<unknown>, cipher: ValueCipher) {
    this.inner = inner
    this.tier = inner.tier
    this.namespace = inner.namespace
    this.cipher = cipher
  }

  #up(key: string, e: CacheEntry<unknown> | undefined): CacheEntry<V> | undefined {
    if (e === undefined) return undefined
    return { ...e, value: this.cipher.decrypt(key, e.value, this.tier) as V }
  }

  async get(key: string): Promise<CacheEntry<V> | undefined> {
    return this.#up(key, await this.inner.get(key))
  }
  async getMany(keys: readonly string[]): Promise<(CacheEntry<V> | undefined)[]> {
    const entries = await this.inner.getMany(keys)
    return entries.map((e, i) => this.#up(keys[i] as string, e))
  }
  set(key: string, value: V, options?: SetOptions | number): Promise<SetResult> {
    let stored: unknown
    try {
      stored = this.cipher.encrypt(key, value)
    } catch (error) {
      return Promise.reject(error as SerializationError)
    }
    return this.inner.set(key, stored, options)
  }
  setMany(items: readonly SetManyItem<V>[]): Promise<SetResult[]> {
    let sealed: SetManyItem<unknown>[]
    try {
      if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
      sealed = items.map((item) =>
        typeof item === 'object' && item !== null
          ? { ...item, value: this.cipher.encrypt(item.key, item.value) }
          : item,
      )
    } catch (error) {
      return Promise.reject(error)
    }
    return this.inner.setMany(sealed)
  }
  delete(key: string): Promise<boolean> {
    return this.inner.delete(key)
  }
  deleteMany(keys: readonly string[]): Promise<number> {
    return this.inner.deleteMany(keys)
  }
  deletePattern(pattern: string): Promise<number> {
    return this.inner.deletePattern(pattern)
  }
  clear(): Promise<number> {
    return this.inner.clear()
  }
  exists(key: string): Promise<boolean> {
    return this.inner.exists(key)
  }
  getTTL(key: string): Promise<number | undefined> {
    return this.inner.getTTL(key)
  }
  setTTL(key: string, ttl: number): Promise<boolean> {
    return this.inner.setTTL(key, ttl)
  }
}

/** The same, for a store of record with versioned deletes (tombstones). */
class EncryptedVersionedStore<V> extends EncryptedStore<V> implements VersionedDeleteStore {
  deleteVersions(items: readonly VersionedDelete[]): Promise<number> {
    return (this.inner as CacheStore<unknown> & VersionedDeleteStore).deleteVersions(items)
  }
}

/** The same, for a cache tier that keeps version heads (`RedisStore`): claimed writes are encrypted. */
class EncryptedHeadStore<V> extends EncryptedStore<V> implements VersionHeadStore<V> {
  claimSet(key: string, value: V, options: ClaimSetOptions): Promise<ClaimResult> {
    let stored: unknown
    try {
      stored = this.cipher.encrypt(key, value)
    } catch (error) {
      return Promise.reject(error)
    }
    return (this.inner as CacheStore<unknown> & VersionHeadStore).claimSet(key, stored, options)
  }
  claimDelete(key: string, options: ClaimDeleteOptions): Promise<ClaimResult> {
    return (this.inner as CacheStore<unknown> & VersionHeadStore).claimDelete(key, options)
  }
  releaseClaim(key: string, version: number, previous: VersionFloor): Promise<boolean> {
    const inner = this.inner as CacheStore<unknown> & VersionHeadStore
    return inner.releaseClaim(key, version, previous)
  }
}

/**
 * A tracked write through the cipher: the value is encrypted for the row as `set` encrypts it, and
 * the builder sees the prior value decrypted, so the change record (and the hash the state tracker
 * takes over it) holds plaintext. A stored value that does not decrypt fails the write with
 * `DecryptError` from inside the transaction: nothing is written.
 */
function writeSealed(
  inner: ChangeRecordingStore,
  cipher: ValueCipher,
  tier: string,
  key: string,
  write: TrackedWrite<unknown>,
  build: ChangeBuilder,
): Promise<TrackedWriteResult> {
  let sealed: TrackedWrite<unknown>
  try {
    sealed = write?.kind === 'set' ? { ...write, value: cipher.encrypt(key, write.value) } : write
  } catch (error) {
    return Promise.reject(error)
  }
  const opened = (prior: PriorState): PriorState =>
    prior.exists ? { ...prior, value: cipher.decrypt(key, prior.value, tier) } : prior
  return inner.writeWithChange(key, sealed, (prior) => build(opened(prior)))
}

/** The same, for a store of record that logs changes with its writes. */
class EncryptedRecordingStore<V> extends EncryptedStore<V> implements ChangeRecordingStore<V> {
  writeWithChange(
    key: string,
    write: TrackedWrite<V>,
    build: ChangeBuilder,
  ): Promise<TrackedWriteResult> {
    const inner = this.inner as CacheStore<unknown> & ChangeRecordingStore
    return writeSealed(inner, this.cipher, this.tier, key, write, build)
  }
}

/** The same, for a store of record with versioned deletes that logs changes (`PrismaStore`). */
class EncryptedVersionedRecordingStore<V>
  extends EncryptedVersionedStore<V>
  implements ChangeRecordingStore<V>
{
  writeWithChange(
    key: string,
    write: TrackedWrite<V>,
    build: ChangeBuilder,
  ): Promise<TrackedWriteResult> {
    const inner = this.inner as CacheStore<unknown> & ChangeRecordingStore
    return writeSealed(inner, this.cipher, this.tier, key, write, build)
  }
}

/** Wraps a namespace's store with its cipher, keeping what the store can do beyond `CacheStore`. */
export function encryptStore<V>(store: CacheStore<unknown>, cipher: ValueCipher): CacheStore<V> {
  const wrapped = wrap<V>(store, cipher)
  if (hasVersionFloors(store)) {
    // versions only: nothing to encrypt
    const floors: VersionFloorStore = { versionFloors: (keys) => store.versionFloors(keys) }
    Object.assign(wrapped, floors)
  }
  if (hasTrackedBatches(store)) {
    const batches: TrackedBatchStore = {
      writeTrackedBatch: (items) => writeSealedBatch(store, cipher, store.tier, items),
    }
    Object.assign(wrapped, batches)
  }
  return wrapped
}

/** A tracked batch through the cipher: values encrypted, the builders see plaintext (see writeSealed). */
function writeSealedBatch(
  inner: TrackedBatchStore,
  cipher: ValueCipher,
  tier: string,
  items: readonly TrackedBatchItem[],
): Promise<TrackedBatchResult[]> {
  let sealed: TrackedBatchItem[]
  try {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'must be an array')
    sealed = items.map((item) => {
      const opened = (prior: PriorState): PriorState =>
        prior.exists ? { ...prior, value: cipher.decrypt(item.key, prior.value, tier) } : prior
      const write =
        item?.write?.kind === 'set' && item.unused !== true
          ? { ...item.write, value: cipher.encrypt(item.key, item.write.value) }
          : item?.write
      return { ...item, write, build: (prior: PriorState) => item.build(opened(prior)) }
    })
  } catch (error) {
    return Promise.reject(error)
  }
  return inner.writeTrackedBatch(sealed)
}

function wrap<V>(store: CacheStore<unknown>, cipher: ValueCipher): CacheStore<V> {
  const versioned = hasVersionedDeletes(store)
  if (isChangeRecordingStore(store)) {
    return versioned
      ? new EncryptedVersionedRecordingStore<V>(store, cipher)
      : new EncryptedRecordingStore<V>(store, cipher)
  }
  if (hasVersionHeads(store)) return new EncryptedHeadStore<V>(store, cipher)
  return versioned
    ? new EncryptedVersionedStore<V>(store, cipher)
    : new EncryptedStore<V>(store, cipher)
}
