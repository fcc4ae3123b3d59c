import type { CacheEntry, CacheStore } from '@actor-cache/core'
import { maskState } from '../domain/audit.js'
import { actorKey, type DemoNamespaces } from '../domain/types.js'
import type { AuditSettings } from '../settings.js'
import type { CacheView, Stack } from '../stack.js'

/** The namespaces keyed by actor (`actor:<id>`); the config is not an actor's. */
export const INSPECTED = ['primary_core', 'flexible_stats', 'derived_stats'] as const
type Inspected = (typeof INSPECTED)[number]

/** A tier's copy of a key: its value, version and remaining life, or why there is none. */
export type TierCopy =
  | { state: 'absent' }
  | {
      state: 'present'
      value: unknown
      version: number
      createdAt: number
      /** Absolute expiry (epoch ms), `null`: never. */
      expiresAt: number | null
      /** The tier's `getTTL` (ms), `null`: never expires. Absent when it expired in between. */
      ttlMs?: number | null
    }
  | { state: 'error'; code: string; message: string }

/** One namespace of an actor, as the cache answers it and as each tier holds it. */
export interface NamespaceInspection {
  /** What a read would be answered with (`getEntry`, `getTTL`: TTL without grace). */
  cache: TierCopy
  /** Each tier in use, top down: `l1`, `l2` (with Redis), `record`. */
  tiers: Record<string, TierCopy>
}

/** An actor across namespaces and tiers. */
export interface ActorInspection {
  id: string
  key: string
  /** The tiers in use, for people. */
  tiers: Stack['tiers']
  namespaces: Record<Inspected, NamespaceInspection>
}

const ttlOf = (ms: number | undefined): number | null | undefined =>
  ms === undefined ? undefined : ms === Infinity ? null : ms

function failed(error: unknown): TierCopy {
  const code = (error as { code?: unknown }).code
  return {
    state: 'error',
    code: typeof code === 'string' ? code : 'E_UNKNOWN',
    message: (error as Error).message,
  }
}

async function copyOf(
  read: () => Promise<[CacheEntry<unknown> | undefined, number | undefined]>,
  mask: (value: unknown) => unknown,
): Promise<TierCopy> {
  try {
    const [entry, ttl] = await read()
    if (entry === undefined) return { state: 'absent' }
    const ttlMs = ttlOf(ttl)
    return {
      state: 'present',
      value: mask(entry.value),
      version: entry.version,
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      ...(ttlMs === undefined ? {} : { ttlMs }),
    }
  } catch (error) {
    return failed(error)
  }
}

/** A store's entry and TTL; the entry is read first, so a TTL follows the version shown. */
const storeRead = (store: CacheStore<unknown>, key: string) => async () =>
  [await store.get(key), await store.getTTL(key)] as [
    CacheEntry<unknown> | undefined,
    number | undefined,
  ]

/**
 * An actor in every namespace keyed by it: each tier's own copy read from its store (no fill, no
 * loader; an L1 read does count as a use for its eviction order), then what a read through the
 * caller's guarded view answers (a `read` grant needed, checked before anything is read; that
 * read may keep a copy of the record in L1, as any read does). Sensitive fields of tracked
 * namespaces are masked as in the audit routes.
 */
export async function inspectActor(
  stack: Stack,
  view: CacheView,
  id: string,
  audit: AuditSettings,
): Promise<ActorInspection> {
  const key = actorKey(id)
  const entries = await Promise.all(
    INSPECTED.map(async (name) => [name, await inspectNamespace(stack, view, name, key, audit)]),
  )
  return {
    id,
    key,
    tiers: stack.tiers,
    namespaces: Object.fromEntries(entries) as ActorInspection['namespaces'],
  }
}

async function inspectNamespace(
  stack: Stack,
  view: CacheView,
  name: Inspected & keyof DemoNamespaces,
  key: string,
  audit: AuditSettings,
): Promise<NamespaceInspection> {
  const mask = (value: unknown) => maskState(name, value, audit)
  const ns = view.namespace(name)
  // the guard first: its refusal (ForbiddenError) is the route's answer, before any tier is read;
  // a tier's failure here shows in the cache's answer below
  await ns.getTTL(key).catch((error: unknown) => {
    if ((error as { code?: unknown }).code === 'E_FORBIDDEN') throw error
  })
  const stores: [string, CacheStore<unknown>][] = [['l1', stack.l1.namespace(name)]]
  if (stack.shared.l2 !== undefined) stores.push(['l2', stack.shared.l2.namespace(name)])
  stores.push(['record', stack.record.store.namespace(name)])
  // the tiers before the cache's answer: a read through the cache may copy the record into L1
  const copies = await Promise.all(stores.map(([, store]) => copyOf(storeRead(store, key), mask)))
  const cache = await copyOf(async () => {
    const entry = await ns.getEntry(key)
    return [entry, await ns.getTTL(key)]
  }, mask)
  return { cache, tiers: Object.fromEntries(stores.map(([tier], i) => [tier, copies[i]!])) }
}
