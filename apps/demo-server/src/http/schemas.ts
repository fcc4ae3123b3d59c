import { MODIFIABLE } from '../domain/types.js'
import { errorSchema } from './errors.js'

/** `:id` of the actor routes. */
export interface IdParams {
  id: string
}

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
} as const

const stat = (max: number) => ({ type: 'integer', minimum: 0, maximum: max }) as const

const primaryProperties = {
  name: { type: 'string', minLength: 1, maxLength: 64 },
  level: { type: 'integer', minimum: 1, maximum: 1000 },
  hp: stat(1_000_000),
  mp: stat(1_000_000),
  strength: stat(10_000),
  agility: stat(10_000),
  intelligence: stat(10_000),
  email: {
    type: 'string',
    maxLength: 254,
    pattern: '^[^@\\s]+@[^@\\s]+$',
    description:
      'the account email: encrypted at rest; "[REDACTED]" to roles not allowed to see it',
  },
} as const

export const primaryCoreSchema = {
  type: 'object',
  additionalProperties: false,
  required: Object.keys(primaryProperties).filter((name) => name !== 'email'),
  properties: primaryProperties,
} as const

export const primaryPatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: primaryProperties,
} as const

export const versionSchema = {
  type: 'integer',
  minimum: 0,
  description: 'the version the write expects (0: must not exist yet); or send If-Match',
} as const

const modifiers = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    MODIFIABLE.map((s) => [s, { type: 'integer', minimum: -10_000, maximum: 10_000 }]),
  ),
} as const

export const flexibleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['equipment', 'buffs'],
  properties: {
    equipment: {
      type: 'object',
      maxProperties: 16,
      propertyNames: { pattern: '^[a-z_]{1,32}$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['item', 'modifiers'],
        properties: { item: { type: 'string', minLength: 1, maxLength: 64 }, modifiers },
      },
    },
    buffs: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'modifiers'],
        properties: { id: { type: 'string', minLength: 1, maxLength: 64 }, modifiers },
      },
    },
  },
} as const

const number = { type: 'number', minimum: 0, maximum: 1_000_000 } as const
const configProperties = {
  baseHp: number,
  hpPerLevel: number,
  hpPerStrength: number,
  baseMp: number,
  mpPerLevel: number,
  mpPerIntelligence: number,
  attackPerStrength: number,
  attackPerLevel: number,
  defensePerAgility: number,
  defensePerLevel: number,
  magicPerIntelligence: number,
  critPerAgility: { type: 'number', minimum: 0, maximum: 1 },
  critCap: { type: 'number', minimum: 0, maximum: 1 },
} as const

export const gameConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: Object.keys(configProperties),
  properties: configProperties,
} as const

export const gameConfigPatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: configProperties,
} as const

export const derivedSchema = {
  type: 'object',
  required: ['maxHp', 'maxMp', 'attack', 'defense', 'magicPower', 'critChance', 'sources'],
  properties: {
    maxHp: { type: 'integer' },
    maxMp: { type: 'integer' },
    attack: { type: 'integer' },
    defense: { type: 'integer' },
    magicPower: { type: 'integer' },
    critChance: { type: 'number' },
    sources: {
      type: 'object',
      description: 'the versions of primary core, flexible stats and game config used',
      properties: {
        primaryCore: { type: 'integer' },
        flexibleStats: { type: 'integer' },
        config: { type: 'integer' },
      },
    },
  },
} as const

/** `{ id, version, <field>: value }` of a versioned document. */
export function versioned(field: string, schema: object): object {
  return {
    type: 'object',
    required: ['id', 'version', field],
    properties: { id: { type: 'string' }, version: { type: 'integer' }, [field]: schema },
  }
}

/** Responses of a route: its own, and the error body for every 4xx and 5xx. */
export function responses(ok: Record<number, object>): Record<string, object> {
  return { ...ok, '4xx': errorSchema, '5xx': errorSchema }
}
