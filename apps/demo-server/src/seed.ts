import {
  type CacheStore,
  type CacheTier,
  type ChangeRecordingStore,
  InvalidOptionError,
  isChangeRecordingStore,
  type WriteTracking,
} from '@actor-cache/core'
import {
  actorKey,
  DEFAULT_GAME_CONFIG,
  type FlexibleStats,
  GAME_CONFIG_KEY,
  type GameConfig,
  type PrimaryCore,
  SYSTEM_ID,
} from './domain/types.js'

/** Progress of a seed run, reported after each batch. */
export interface SeedProgress {
  done: number
  total: number
  created: number
}

const BATCH = 500
const WEAPONS = ['wooden sword', 'iron sword', 'steel axe', 'oak staff', 'elven bow']

/** The primary core of seeded actor `n` (deterministic). */
export function seedActor(n: number): PrimaryCore {
  const level = 1 + (n % 60)
  return {
    name: `hero-${n}`,
    level,
    hp: 100 + level * 10,
    mp: 50 + (n % 40),
    strength: 5 + (n % 20),
    agility: 5 + ((n * 7) % 20),
    intelligence: 5 + ((n * 13) % 20),
    email: `hero-${n}@example.com`,
  }
}

/** The starting equipment of seeded actor `n`. */
export function seedEquipment(n: number): FlexibleStats {
  const tier = n % WEAPONS.length
  return {
    equipment: {
      weapon: { item: WEAPONS[tier] as string, modifiers: { attack: 3 + tier * 2 } },
      armor: { item: 'leather armor', modifiers: { defense: 4 } },
    },
    buffs: [],
  }
}

/** The author of every seeded change in the audit trail. */
export const SEED_AUTHOR = { userId: 'system:seed', systemId: SYSTEM_ID } as const

/** Tracked writes of one batch under way at once (PostgreSQL takes them on several connections). */
const CONCURRENCY = 8

/**
 * Writes each value as a tracked create: the row and its change record (version 1, the chain's
 * first hash) in one transaction, as the cache's tracked writes do, without filling the caches.
 */
async function writeTracked<V>(
  store: CacheStore<V>,
  tracking: WriteTracking,
  entries: readonly { key: string; value: V }[],
): Promise<void> {
  if (!isChangeRecordingStore(store)) {
    throw new InvalidOptionError('record', 'must log changes with its writes (a Prisma store)')
  }
  const recording: ChangeRecordingStore = store
  for (let i = 0; i < entries.length; i += CONCURRENCY) {
    await Promise.all(
      entries.slice(i, i + CONCURRENCY).map(({ key, value }) => {
        const build = tracking.prepare({
          namespace: store.namespace,
          key,
          kind: 'set',
          value,
          expectedVersion: 0,
          ...SEED_AUTHOR,
        })
        return recording.writeWithChange(key, { kind: 'set', value }, build)
      }),
    )
  }
}

/** Where the number of actors seeded so far is kept (in the store of record, not cached). */
export const SEED_MARK = { namespace: 'demo_seed', key: 'actors' } as const

/**
 * Writes the actors `actor:1` ... `actor:count` that were never seeded (with their equipment),
 * and the default game config when there is none. Actors and equipment are tracked namespaces:
 * each is written with its change record (author {@link SEED_AUTHOR}), so every chain starts at
 * version 1 and verifies. A mark in the store of record counts the
 * actors seeded, so a restart seeds nothing again (a deleted actor stays deleted); after an
 * interrupted run, actors that exist are kept as they are.
 */
export async function seedRecord(
  record: CacheTier,
  tracking: WriteTracking,
  count: number,
  onProgress: (progress: SeedProgress) => void = () => {},
): Promise<SeedProgress> {
  const config: CacheStore<GameConfig> = record.namespace<GameConfig>('config')
  if ((await config.get(GAME_CONFIG_KEY)) === undefined) {
    await config.set(GAME_CONFIG_KEY, DEFAULT_GAME_CONFIG)
  }
  const primary = record.namespace<PrimaryCore>('primary_core')
  const flexible = record.namespace<FlexibleStats>('flexible_stats')
  const mark = record.namespace<number>(SEED_MARK.namespace)
  const seeded = (await mark.get(SEED_MARK.key))?.value ?? 0
  let created = 0
  for (let from = seeded + 1; from <= count; from += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, count - from + 1) }, (_, i) => from + i)
    const found = await primary.getMany(ids.map((n) => actorKey(String(n))))
    const missing = ids.filter((_, i) => found[i] === undefined)
    if (missing.length > 0) {
      const key = (n: number) => actorKey(String(n))
      await writeTracked(
        primary,
        tracking,
        missing.map((n) => ({ key: key(n), value: seedActor(n) })),
      )
      await writeTracked(
        flexible,
        tracking,
        missing.map((n) => ({ key: key(n), value: seedEquipment(n) })),
      )
      created += missing.length
    }
    await mark.set(SEED_MARK.key, from + ids.length - 1)
    onProgress({ done: from + ids.length - 1, total: count, created })
  }
  return { done: count, total: count, created }
}
