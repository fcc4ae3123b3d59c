import { type Codec, channels } from '@actor-cache/core'
import type { PrismaTier } from './prisma-tier.js'

/** The tier name every store of this package reports. */
export const TIER = 'postgres'

/** What every operation of one namespace's store works with. */
export interface StoreScope {
  /** The tier that runs statements with its timeout and owns the client. */
  readonly owner: PrismaTier
  readonly namespace: string
  /** TTL in ms of writes that give none. */
  readonly defaultTtl: number
  readonly codec: Codec
}

/** Orders by key: batches lock rows in key order, so concurrent ones cannot deadlock. */
export function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

/** Publishes a read's hit or miss on the diagnostics channel, when anyone listens. */
export function publishRead(scope: StoreScope, kind: 'hit' | 'miss', key: string): void {
  const ch = channels[kind]
  if (ch.hasSubscribers) ch.publish({ tier: TIER, namespace: scope.namespace, key, durationMs: 0 })
}

/** Publishes a write and whether it applied, when anyone listens. */
export function publishSet(scope: StoreScope, key: string, applied: boolean): void {
  if (channels.set.hasSubscribers) {
    channels.set.publish({ tier: TIER, namespace: scope.namespace, key, durationMs: 0, applied })
  }
}

/** Publishes how many live rows a delete removed, when it removed any and anyone listens. */
export function publishDeleted(scope: StoreScope, count: number): void {
  if (count > 0 && channels.delete.hasSubscribers) {
    channels.delete.publish({ tier: TIER, namespace: scope.namespace, count, durationMs: 0 })
  }
}
