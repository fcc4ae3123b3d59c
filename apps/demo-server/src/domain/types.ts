/** The attributes an actor is made of; written by game masters, versioned (write-through). */
export interface PrimaryCore {
  name: string
  level: number
  hp: number
  mp: number
  strength: number
  agility: number
  intelligence: number
  /**
   * The account's email: personal data, stored encrypted in Redis, PostgreSQL and the change log
   * (`demo.encryption`), masked in the audit trail, shown only to `reveal_roles`.
   */
  email?: string
}

/** What equipment and buffs may modify. */
export const MODIFIABLE = [
  'strength',
  'agility',
  'intelligence',
  'maxHp',
  'maxMp',
  'attack',
  'defense',
] as const
export type ModifiableStat = (typeof MODIFIABLE)[number]
export type Modifiers = Partial<Record<ModifiableStat, number>>

/** An item worn in a slot, with what it adds. */
export interface EquipmentItem {
  item: string
  modifiers: Modifiers
}

/** A temporary effect. */
export interface Buff {
  id: string
  modifiers: Modifiers
}

/** What changes often and is not part of the actor's core: equipment and buffs (write-around). */
export interface FlexibleStats {
  equipment: Record<string, EquipmentItem>
  buffs: Buff[]
}

/** Game settings shared by every actor (the ConfigManager's document). */
export interface GameConfig {
  baseHp: number
  hpPerLevel: number
  hpPerStrength: number
  baseMp: number
  mpPerLevel: number
  mpPerIntelligence: number
  attackPerStrength: number
  attackPerLevel: number
  defensePerAgility: number
  defensePerLevel: number
  magicPerIntelligence: number
  critPerAgility: number
  critCap: number
}

/** The versions a derived value was computed from: it is current only while they are. */
export interface DerivedSources {
  primaryCore: number
  flexibleStats: number
  config: number
}

/** Computed from PrimaryCore, FlexibleStats and the GameConfig (write-behind). */
export interface DerivedStats {
  maxHp: number
  maxMp: number
  attack: number
  defense: number
  magicPower: number
  critChance: number
  sources: DerivedSources
}

/** A GET response as the response cache keeps it: its validator and its serialized JSON body. */
export interface CachedResponse {
  etag: string
  body: string
}

/** The value type of each namespace of the demo's cache. */
export interface DemoNamespaces {
  primary_core: PrimaryCore
  flexible_stats: FlexibleStats
  derived_stats: DerivedStats
  config: GameConfig
  /** GET responses of the API (`src/http/response-cache.ts`): in L1 and L2 only, no record. */
  api_responses: CachedResponse
}

/** The namespace of the response cache. */
export const RESPONSE_NAMESPACE = 'api_responses'

/** The namespaces whose writes are tracked (logged with author, version and hash chain). */
export const TRACKED = ['primary_core', 'flexible_stats'] as const
/** A tracked namespace: an entity type of the audit trail. */
export type TrackedNamespace = (typeof TRACKED)[number]

/** The system id of every change this server logs. */
export const SYSTEM_ID = 'demo-server'

/** The cache key of an actor id in every actor namespace. */
export const actorKey = (id: string): string => `actor:${id}`

/** The key of the game config in the `config` namespace. */
export const GAME_CONFIG_KEY = 'game'

export const DEFAULT_GAME_CONFIG: GameConfig = {
  baseHp: 100,
  hpPerLevel: 12,
  hpPerStrength: 2,
  baseMp: 50,
  mpPerLevel: 6,
  mpPerIntelligence: 3,
  attackPerStrength: 2,
  attackPerLevel: 1,
  defensePerAgility: 1.5,
  defensePerLevel: 0.5,
  magicPerIntelligence: 2.5,
  critPerAgility: 0.002,
  critCap: 0.5,
}
