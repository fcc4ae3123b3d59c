import type {
  DerivedSources,
  DerivedStats,
  FlexibleStats,
  GameConfig,
  ModifiableStat,
  Modifiers,
  PrimaryCore,
} from './types.js'

/** Sum of every equipment and buff modifier, per stat. */
export function totalModifiers(flexible: FlexibleStats | undefined): Modifiers {
  const total: Modifiers = {}
  if (flexible === undefined) return total
  const all = [
    ...Object.values(flexible.equipment).map((e) => e.modifiers),
    ...flexible.buffs.map((b) => b.modifiers),
  ]
  for (const mods of all) {
    for (const [stat, amount] of Object.entries(mods) as [ModifiableStat, number][]) {
      total[stat] = (total[stat] ?? 0) + amount
    }
  }
  return total
}

/** The derived stats of an actor: a pure function of its sources. */
export function deriveStats(
  core: PrimaryCore,
  flexible: FlexibleStats | undefined,
  config: GameConfig,
  sources: DerivedSources,
): DerivedStats {
  const mods = totalModifiers(flexible)
  const strength = core.strength + (mods.strength ?? 0)
  const agility = core.agility + (mods.agility ?? 0)
  const intelligence = core.intelligence + (mods.intelligence ?? 0)
  const round = (n: number): number => Math.round(n)
  return {
    maxHp: round(
      config.baseHp +
        core.level * config.hpPerLevel +
        strength * config.hpPerStrength +
        (mods.maxHp ?? 0),
    ),
    maxMp: round(
      config.baseMp +
        core.level * config.mpPerLevel +
        intelligence * config.mpPerIntelligence +
        (mods.maxMp ?? 0),
    ),
    attack: round(
      strength * config.attackPerStrength + core.level * config.attackPerLevel + (mods.attack ?? 0),
    ),
    defense: round(
      agility * config.defensePerAgility +
        core.level * config.defensePerLevel +
        (mods.defense ?? 0),
    ),
    magicPower: round(intelligence * config.magicPerIntelligence),
    critChance: Math.min(config.critCap, Math.max(0, agility * config.critPerAgility)),
    sources,
  }
}
