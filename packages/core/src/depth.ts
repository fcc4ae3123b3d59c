/**
 * The one nesting limit of cacheable values, shared by the default serializer (on write and on
 * read) and by `freezeValue` / `measureValue` (the in-memory tier), so that every tier accepts
 * and refuses the same values.
 */

/**
 * Deepest nesting a cached value may have, counted in levels of its stored JSON form: an array
 * or plain object is one level; a `Date`, `bigint`, `undefined`, `NaN`, `±Infinity` or `-0`
 * (stored as a tagged object) is one; a `Set` two, a `Map` three (its entry list and each
 * `[key, value]` pair; two when empty); strings, finite numbers, booleans and `null` none.
 * So `[[1]]` has depth 2, `[[1n]]` depth 3, and an array nested 1000 times around a number is
 * the deepest such value accepted.
 *
 * Deeper values are refused when written (`SerializationError`) and treated as corrupt when read
 * (`DecodeError`: the Redis and PostgreSQL tiers then report them instead of serving them), so a
 * value planted in a shared tier cannot reach a caller that could never have written it. Counting
 * the stored form keeps the serializer's own recursion far from the stack limit.
 */
export const MAX_VALUE_DEPTH = 1000

/**
 * Levels of the stored form `value` opens itself (`own`), and how many of them enclose its
 * children (`inner`). Shared by every walker so they all count alike.
 */
export function levelsOf(value: unknown): { own: number; inner: number } {
  switch (typeof value) {
    case 'bigint':
    case 'undefined':
      return TAGGED
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? NONE : TAGGED
    case 'object':
      if (value === null) return NONE
      // {"$t":"map","v":[[k, v], ...]} and {"$t":"set","v":[...]}
      if (value instanceof Map) return value.size === 0 ? TAGGED_LIST : MAP
      if (value instanceof Set) return TAGGED_LIST
      return CONTAINER // arrays, plain objects, Date (no children), what the serializer refuses
    default:
      return NONE
  }
}

const NONE = Object.freeze({ own: 0, inner: 0 })
const TAGGED = Object.freeze({ own: 1, inner: 0 })
const CONTAINER = Object.freeze({ own: 1, inner: 1 })
const TAGGED_LIST = Object.freeze({ own: 2, inner: 2 })
const MAP = Object.freeze({ own: 3, inner: 3 })

/**
 * True when `value`, stored inside `level` enclosing levels, would nest deeper than
 * {@link MAX_VALUE_DEPTH}, or has a cycle. Walks no deeper than the limit, so a hostile depth
 * costs at most that many stack frames.
 */
export function nestedTooDeep(value: unknown, level = 0): boolean {
  const { own, inner } = levelsOf(value)
  if (level + own > MAX_VALUE_DEPTH) return true
  if (inner === 0) return false
  const next = level + inner
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (nestedTooDeep(value[i], next)) return true
    return false
  }
  if (value instanceof Map) {
    for (const [k, v] of value) if (nestedTooDeep(k, next) || nestedTooDeep(v, next)) return true
    return false
  }
  if (value instanceof Set) {
    for (const v of value) if (nestedTooDeep(v, next)) return true
    return false
  }
  const proto = Object.getPrototypeOf(value)
  // Date and class instances have no children here (the serializer refuses class instances).
  if (proto !== Object.prototype && proto !== null) return false
  for (const k in value as object) {
    if (nestedTooDeep((value as Record<string, unknown>)[k], next)) return true
  }
  return false
}

/**
 * A path inside a value in the notation of every `SerializationError`: `$` is the value itself,
 * `.name` a property, `[3]` an array index, `.<key 0>` / `.<value 0>` the key and value of a
 * Map's first entry, `.<item 0>` a Set's first item.
 */
export function formatPath(path: readonly (string | number)[]): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}`
}

/**
 * Where `value` contains itself within {@link MAX_VALUE_DEPTH} levels, as a path like
 * `$.stats[3].owner` (see {@link formatPath}); undefined when it has no cycle.
 * Tells a cycle from mere depth once {@link nestedTooDeep} said yes (for error messages: it is
 * slower).
 */
export function cyclePath(value: unknown): string | undefined {
  const path = findCycle(value, [], [])
  return path === undefined ? undefined : formatPath(path)
}

/**
 * Where `value` first nests deeper than {@link MAX_VALUE_DEPTH} (see {@link formatPath}): the
 * path of the first value, in `freezeValue`'s walking order, whose own levels pass the limit;
 * undefined when none does. For error messages, once {@link nestedTooDeep} said yes.
 */
export function tooDeepPath(value: unknown): string | undefined {
  const path: (string | number)[] = []
  return findTooDeep(value, 0, path) ? formatPath(path) : undefined
}

/** True when `value` or a child passes the limit; `path` then leads to it. */
function findTooDeep(value: unknown, level: number, path: (string | number)[]): boolean {
  const { own, inner } = levelsOf(value)
  if (level + own > MAX_VALUE_DEPTH) return true
  if (inner === 0) return false
  const next = level + inner
  const at = (step: string | number, child: unknown): boolean => {
    path.push(step)
    if (findTooDeep(child, next, path)) return true
    path.pop()
    return false
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (at(i, value[i])) return true
  } else if (value instanceof Map) {
    let i = 0
    for (const [k, v] of value) {
      if (at(`<key ${i}>`, k) || at(`<value ${i}>`, v)) return true
      i++
    }
  } else if (value instanceof Set) {
    let i = 0
    for (const v of value) if (at(`<item ${i++}>`, v)) return true
  } else if ([Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    for (const k of Object.keys(value as object)) {
      if (at(k, (value as Record<string, unknown>)[k])) return true
    }
  }
  return false
}

function findCycle(
  value: unknown,
  ancestors: object[],
  path: (string | number)[],
): (string | number)[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  if (ancestors.includes(value)) return [...path]
  if (ancestors.length >= MAX_VALUE_DEPTH) return undefined
  const children: [string | number, unknown][] = []
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) children.push([i, value[i]])
  } else if (value instanceof Map) {
    let i = 0
    for (const [k, v] of value) children.push([`<key ${i}>`, k], [`<value ${i++}>`, v])
  } else if (value instanceof Set) {
    let i = 0
    for (const v of value) children.push([`<item ${i++}>`, v])
  } else if ([Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    for (const k of Object.keys(value)) children.push([k, (value as Record<string, unknown>)[k]])
  }
  ancestors.push(value)
  for (const [at, child] of children) {
    path.push(at)
    const found = findCycle(child, ancestors, path)
    path.pop()
    if (found !== undefined) return found
  }
  ancestors.pop()
  return undefined
}
