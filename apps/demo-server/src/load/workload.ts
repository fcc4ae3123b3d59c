import { createZipfSampler, prng } from './zipf.js'

/** The kinds of operation a simulated game session makes. */
export const KINDS = ['reads', 'updates', 'equipment', 'config'] as const
export type OperationKind = (typeof KINDS)[number]

/** Relative weights of the kinds (they need not sum to anything). */
export type Mix = Record<OperationKind, number>

/**
 * Mostly players reading (their actor, its derived stats, its equipment), some stat updates and
 * equipment changes, and a game master changing the game config now and then (each change
 * drops every actor's derived stats).
 */
export const DEFAULT_MIX: Mix = { reads: 90, updates: 5, equipment: 5, config: 0.01 }

/** Parses `reads=90,updates=5,equipment=5,config=0.01` (kinds left out keep their default). */
export function parseMix(text: string): Mix {
  const mix = { ...DEFAULT_MIX }
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const [name, raw] = part.split('=').map((s) => s.trim())
    if (!KINDS.includes(name as OperationKind)) {
      throw new RangeError(`--mix: unknown kind "${name}" (kinds: ${KINDS.join(', ')})`)
    }
    const weight = Number(raw)
    if (raw === undefined || raw === '' || !Number.isFinite(weight) || weight < 0) {
      throw new RangeError(`--mix: ${name} needs a weight ≥ 0, got "${raw ?? ''}"`)
    }
    mix[name as OperationKind] = weight
  }
  if (KINDS.every((k) => mix[k] === 0)) throw new RangeError('--mix: every weight is 0')
  return mix
}

/** Whose bearer token a request carries. */
export type Role = 'player' | 'gm' | 'admin'

/** One HTTP request of the workload. */
export interface Operation {
  kind: OperationKind
  /** The route, for per-route counts: `GET /actors/:id/derived`, ... */
  route: string
  method: 'GET' | 'PATCH' | 'PUT'
  path: string
  role: Role
  body?: object
}

/** Draws the operations of a run. */
export interface Workload {
  next(): Operation
}

const READS = [
  { route: 'GET /actors/:id', suffix: '' },
  { route: 'GET /actors/:id/derived', suffix: '/derived' },
  { route: 'GET /actors/:id/equipment', suffix: '/equipment' },
] as const
const ITEMS = ['iron sword', 'steel axe', 'oak staff', 'elven bow', 'rune blade', 'war hammer']

/**
 * The workload over actors `1` ... `actors`, chosen by Zipf (exponent `zipf`: a few actors are
 * played much more than the rest), deterministic for a `seed`.
 */
export function createWorkload(options: {
  mix: Mix
  actors: number
  zipf: number
  seed: number
}): Workload {
  const random = prng(options.seed)
  const sampler = createZipfSampler(options.actors, options.zipf, random)
  const weights = KINDS.map((k) => options.mix[k])
  const total = weights.reduce((a, b) => a + b, 0)
  const int = (n: number): number => Math.floor(random() * n)
  const kind = (): OperationKind => {
    let u = random() * total
    for (let i = 0; i < KINDS.length; i++) {
      u -= weights[i] as number
      if (u < 0) return KINDS[i] as OperationKind
    }
    return 'reads'
  }
  return {
    next() {
      const k = kind()
      const id = String(sampler.next() + 1)
      if (k === 'reads') {
        const read = READS[int(READS.length)] as (typeof READS)[number]
        return {
          kind: k,
          route: read.route,
          method: 'GET',
          path: `/actors/${id}${read.suffix}`,
          role: 'player',
        }
      }
      if (k === 'updates') {
        const body = { primaryCore: { hp: 100 + int(900), strength: 5 + int(30) } }
        return {
          kind: k,
          route: 'PATCH /actors/:id',
          method: 'PATCH',
          path: `/actors/${id}`,
          role: 'gm',
          body,
        }
      }
      if (k === 'equipment') {
        const weapon = {
          item: ITEMS[int(ITEMS.length)] as string,
          modifiers: { attack: 1 + int(12) },
        }
        const armor = { item: 'leather armor', modifiers: { defense: 1 + int(8) } }
        const body = { flexibleStats: { equipment: { weapon, armor }, buffs: [] } }
        const path = `/actors/${id}/equipment`
        return {
          kind: k,
          route: 'PUT /actors/:id/equipment',
          method: 'PUT',
          path,
          role: 'player',
          body,
        }
      }
      const body = { config: { baseHp: 90 + int(21) } }
      return {
        kind: k,
        route: 'PATCH /config',
        method: 'PATCH',
        path: '/config',
        role: 'admin',
        body,
      }
    },
  }
}
