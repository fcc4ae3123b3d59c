import type { CacheView, DemoCache } from '../stack.js'
import type { Versioned, Written } from './actors.js'
import { checkExpected } from './actors.js'
import { NotFoundError } from './errors.js'
import { GAME_CONFIG_KEY, type GameConfig } from './types.js'

/** The game settings and their version. */
export async function getGameConfig(view: CacheView): Promise<Versioned<GameConfig>> {
  const entry = await view.namespace('config').getEntry(GAME_CONFIG_KEY)
  if (entry === undefined) throw new NotFoundError('game config')
  return { version: entry.version, value: entry.value }
}

/**
 * Changes game settings (a compare-and-set against the version read, or the one expected), then
 * runs the `config_changed` event: every actor's derived stats are dropped in every tier and
 * instance, and recomputed with the new settings when next read.
 */
export async function updateGameConfig(
  view: CacheView,
  cache: DemoCache,
  patch: Partial<GameConfig>,
  expectedVersion: number | undefined,
): Promise<Written & { value: GameConfig }> {
  const current = await getGameConfig(view)
  checkExpected(expectedVersion, current.version, { namespace: 'config', key: GAME_CONFIG_KEY })
  const value = { ...current.value, ...patch }
  const result = await view
    .namespace('config')
    .set(GAME_CONFIG_KEY, value, { expectedVersion: current.version })
  await cache.invalidateByEvent('config_changed')
  return { version: result.version, value }
}
