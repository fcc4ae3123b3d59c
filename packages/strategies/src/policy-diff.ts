import type { ResolvedPolicy } from './policy.js'

/**
 * What differs between the policy a namespace was set up with and one asked for later, one line
 * per setting (`ttl: 60000, asked 30000`); empty when they are equal. Functions and stores are
 * equal only when they are the same object.
 */
export function policyDiff<V>(current: ResolvedPolicy<V>, asked: ResolvedPolicy<V>): string[] {
  const out: string[] = []
  for (const name of Object.keys(current) as (keyof ResolvedPolicy<V>)[]) {
    const a = current[name]
    const b = asked[name]
    if (Object.is(a, b)) continue
    const same = typeof a === typeof b && describe(a) === describe(b)
    out.push(
      same ? `${name}: another ${describe(b)}` : `${name}: ${describe(a)}, asked ${describe(b)}`,
    )
  }
  return out
}

function describe(value: unknown): string {
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`
  if (typeof value === 'object' && value !== null) return 'store'
  return String(value)
}
