import { InvalidOptionError, type Serializer } from '@actor-cache/core'
import { sameValue } from './chain-hash.js'

/**
 * How one field of two concurrent changes is merged when both changed it:
 * - `counter`: both were deltas: theirs + (mine − base) (numbers; a missing base counts as 0)
 * - `max`, `min`: the larger or smaller of the two (numbers)
 * - `union`: the items of both (arrays; theirs first, then mine's new ones)
 * - `mine`, `theirs`: one side wins the field
 * - `reject`: the conflict stands
 */
export type FieldMerge = 'counter' | 'max' | 'min' | 'union' | 'mine' | 'theirs' | 'reject'

/** Field rules by field name; `'*'` is the rule of every field not named. @default '*': 'reject' */
export type MergeRules = Readonly<Record<string, FieldMerge>>

/**
 * A merge of the whole value: `base` is the state the write expected (`undefined` when absent),
 * `mine` what it carried, `theirs` the state it found. Throw to let the conflict stand.
 */
export type MergeFunction = (base: unknown, mine: unknown, theirs: unknown) => unknown

/**
 * What a tracked write whose expected version is not the stored one does:
 * - `reject`: the caller gets `ConflictError` (the default);
 * - `last_writer_wins`: the write applies over the newer state (which stays in the log);
 * - `{ merge }`: fields only one side changed are kept; fields both changed merge by their rule,
 *   or a function merges the whole value. Each resolution is logged as an ordinary change.
 */
export type ConflictPolicy = 'reject' | 'last_writer_wins' | { merge: MergeRules | MergeFunction }

const FIELD_MERGES: ReadonlySet<string> = new Set([
  'counter',
  'max',
  'min',
  'union',
  'mine',
  'theirs',
  'reject',
])

/** Checks a conflict policy, before any I/O. */
export function checkPolicy(policy: unknown, where: string): ConflictPolicy {
  if (policy === undefined) return 'reject'
  if (policy === 'reject' || policy === 'last_writer_wins') return policy
  const merge = (policy as { merge?: unknown } | null)?.merge
  if (typeof merge === 'function') return { merge: merge as MergeFunction }
  if (typeof merge === 'object' && merge !== null && !Array.isArray(merge)) {
    for (const [field, rule] of Object.entries(merge)) {
      if (!FIELD_MERGES.has(rule as string)) {
        throw new InvalidOptionError(
          `${where}.merge.${field}`,
          `must be one of ${[...FIELD_MERGES].join(', ')}, got ${JSON.stringify(rule)}`,
        )
      }
    }
    return { merge: merge as MergeRules }
  }
  throw new InvalidOptionError(
    where,
    "must be 'reject', 'last_writer_wins' or { merge: rules by field | function }",
  )
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** One field both sides changed, merged by `rule`; `undefined` result with `ok: false` when it cannot be. */
function mergeField(
  rule: FieldMerge,
  base: unknown,
  mine: unknown,
  theirs: unknown,
  s: Serializer,
): { ok: true; value: unknown } | { ok: false } {
  switch (rule) {
    case 'mine':
      return { ok: true, value: mine }
    case 'theirs':
      return { ok: true, value: theirs }
    case 'counter':
      if (isNumber(mine) && isNumber(theirs) && (base === undefined || isNumber(base))) {
        return { ok: true, value: theirs + (mine - ((base as number | undefined) ?? 0)) }
      }
      return { ok: false }
    case 'max':
    case 'min':
      if (!isNumber(mine) || !isNumber(theirs)) return { ok: false }
      return { ok: true, value: rule === 'max' ? Math.max(mine, theirs) : Math.min(mine, theirs) }
    case 'union': {
      if (!Array.isArray(mine) || !Array.isArray(theirs)) return { ok: false }
      const out = [...theirs]
      for (const item of mine) if (!out.some((t) => sameValue(t, item, s))) out.push(item)
      return { ok: true, value: out }
    }
    default:
      return { ok: false }
  }
}

/** The fields of a plain object value; `undefined` for anything else (arrays included). */
export const fieldsOf = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined

/**
 * Three-way merge by field rules. Returns the merged value, or the fields that could not be
 * merged.
 */
export function mergeByRules(
  base: unknown,
  mine: unknown,
  theirs: unknown,
  rules: MergeRules,
  s: Serializer,
): { ok: true; value: unknown } | { ok: false; fields: string[] } {
  const b = base === undefined ? {} : fieldsOf(base)
  const m = fieldsOf(mine)
  const t = fieldsOf(theirs)
  if (b === undefined || m === undefined || t === undefined) {
    return { ok: false, fields: [''] }
  }
  const same = (x: unknown, y: unknown): boolean =>
    x === undefined || y === undefined ? x === y : sameValue(x, y, s)
  const out: Record<string, unknown> = {}
  const failed: string[] = []
  for (const f of new Set([...Object.keys(b), ...Object.keys(m), ...Object.keys(t)])) {
    const [bv, mv, tv] = [b[f], m[f], t[f]]
    const rule = rules[f] ?? rules['*'] ?? 'reject'
    let value: unknown
    if (same(mv, bv)) value = tv
    else if (same(tv, bv)) value = mv
    // both changed it alike: one value, unless each change is a delta (counters add up)
    else if (rule !== 'counter' && same(mv, tv)) value = mv
    else {
      const merged = mergeField(rule, bv, mv, tv, s)
      if (!merged.ok) {
        failed.push(f)
        continue
      }
      value = merged.value
    }
    if (value !== undefined) out[f] = value
  }
  return failed.length > 0 ? { ok: false, fields: failed } : { ok: true, value: out }
}
