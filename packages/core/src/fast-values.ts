import {
  type FrozenValue,
  freezeValueFully,
  HEAP_NUMBER,
  measureValueFully,
  OBJECT_BASE,
  SLOT,
  STRING_BASE,
} from './values.js'

/**
 * `freezeValue` and `measureValue`, fast for the shapes actor state has: primitives, plain
 * objects and arrays, nested a few levels. Results equal the full walk of values.ts (same copy,
 * same size estimate, same values refused); anything else (Date, Map, Set, bigint, functions,
 * symbols, class instances, `__proto__` or `constructor` keys, nesting deeper than
 * {@link FAST_DEPTH}, cycles) goes to the full walk, which has every rule and names the path of a
 * refused part. Such a value is walked twice up to where the fast walk gave up.
 *
 * The speed comes from what the fast walk does not need: no path kept for error messages, no
 * ancestor list for cycles (a cycle is just deeper than {@link FAST_DEPTH}), no nesting
 * arithmetic (the limit is far beyond {@link FAST_DEPTH}), no key arrays.
 */

/** Nesting the fast walk follows before handing the value to core. */
const FAST_DEPTH = 32

/** Raised inside the fast walk when the value needs core's walk. */
const GIVE_UP: unique symbol = Symbol('give up')

/**
 * Bytes counted by the walk in progress. A module variable rather than a holder object per
 * write; each entry point saves and restores it, so a getter that writes to a cache during a
 * walk does not disturb the outer walk's count.
 */
let bytes = 0

/**
 * Copies `value` into a deeply frozen structure and estimates its heap size. Accepts the same
 * types as the default serializer: primitives (including `undefined`, `bigint`, `-0`, `NaN`),
 * plain objects, arrays, `Date`, `Map`, `Set`. `Date`, `Map` and `Set` come back with their
 * mutators throwing. Shared references are copied once per occurrence, as the serializer would.
 *
 * With `previous`, an earlier result of `freezeValue` (for the same key, say), every part of the
 * new value equal to the part at the same place in `previous` is that part: a write that changes
 * one field of a large state allocates only the objects on the path to that field. The size
 * counts shared parts in full. `previous` must be what `freezeValue` returned: a value that is
 * not frozen is ignored, but below its top level, parts are taken as they are.
 * @throws {SerializationError} for cycles, functions, symbols, class instances, `__proto__` keys,
 * nesting deeper than `MAX_VALUE_DEPTH`
 */
export function freezeValue<T>(value: T, previous?: unknown): FrozenValue<T> {
  const outer = bytes
  bytes = 0
  try {
    if (prototypeIsClean()) {
      const copied = (
        typeof previous === 'object' && previous !== null && Object.isFrozen(previous)
          ? copyOver(value, previous, 0)
          : copy(value, 0)
      ) as T
      return { value: copied, size: bytes }
    }
  } catch (err) {
    if (err !== GIVE_UP) throw err
  } finally {
    bytes = outer
  }
  return freezeValueFully(value)
}

/**
 * Checks `value` against the same rules as {@link freezeValue} and estimates its heap size,
 * without copying or freezing it.
 * @throws {SerializationError}
 */
export function measureValue(value: unknown): number {
  const outer = bytes
  bytes = 0
  try {
    if (prototypeIsClean()) {
      walk(value, 0)
      return bytes
    }
  } catch (err) {
    if (err !== GIVE_UP) throw err
  } finally {
    bytes = outer
  }
  return measureValueFully(value)
}

/**
 * The fast walk lists keys with `for...in` (it allocates no key array, unlike `Object.keys`),
 * which would also list enumerable properties someone added to `Object.prototype`.
 */
function prototypeIsClean(): boolean {
  for (const _ in Object.prototype) return false
  return true
}

function primitiveSize(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return STRING_BASE + value.length
    case 'number':
      return Number.isInteger(value) && Math.abs(value) < 2 ** 30 ? 0 : HEAP_NUMBER
    case 'boolean':
    case 'undefined':
      return 0
    default:
      throw GIVE_UP // bigint, symbol, function: rare, or refused with core's message
  }
}

/** Gives up unless `value` is a plain object without symbol keys. */
function checkPlain(value: object): void {
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) throw GIVE_UP
  if (Object.getOwnPropertySymbols(value).length > 0) throw GIVE_UP
}

function copy(value: unknown, depth: number): unknown {
  if (typeof value !== 'object') {
    bytes += primitiveSize(value)
    return value
  }
  if (value === null) return null
  if (depth >= FAST_DEPTH) throw GIVE_UP
  if (Array.isArray(value)) return Object.freeze(copyArray(value, depth))
  const out = shallowCopy(value)
  let n = 0
  for (const k in out) {
    if (k === 'constructor') throw GIVE_UP
    const v = out[k]
    if (typeof v === 'object' && v !== null) out[k] = copy(v, depth + 1)
    else bytes += primitiveSize(v)
    n++
  }
  bytes += OBJECT_BASE + SLOT * n
  return Object.freeze(out)
}

/**
 * A plain object's own enumerable properties, each read once, in a new object: `Object.assign`
 * onto an empty literal builds it along V8's usual map transitions (freezing it afterwards is
 * cheap), several times faster than adding the keys one by one. An own `__proto__` key would be
 * assigned as the prototype, so such a value goes to core, which refuses it.
 */
function shallowCopy(value: object): Record<string, unknown> {
  checkPlain(value)
  if (Object.hasOwn(value, '__proto__')) throw GIVE_UP
  return Object.assign({}, value) as Record<string, unknown>
}

/**
 * Copies an array with spread when its iteration is the built-in one (it then reads index by
 * index, holes as `undefined`, as core does): V8 copies the elements in one go, and an array
 * still sharing a literal's copy-on-write elements keeps sharing them (they are immutable).
 */
function copyArray(value: unknown[], depth: number): unknown[] {
  let out: unknown[]
  let n: number
  if (value[Symbol.iterator] === ARRAY_VALUES && ARRAY_ITERATOR.next === ARRAY_NEXT) {
    out = [...value]
    n = out.length
    for (let i = 0; i < n; i++) {
      const item = out[i]
      if (typeof item === 'object' && item !== null) out[i] = copy(item, depth + 1)
      else bytes += primitiveSize(item)
    }
  } else {
    n = value.length
    out = new Array<unknown>(n)
    for (let i = 0; i < n; i++) out[i] = copy(value[i], depth + 1)
  }
  bytes += OBJECT_BASE + SLOT * n
  return out
}

/**
 * {@link copy} of `value`, returning `hint` (a part of an earlier frozen copy) where the copy
 * would equal it, and the parts of `hint` the copy would equal where only some differ.
 */
function copyOver(value: unknown, hint: unknown, depth: number): unknown {
  if (typeof value !== 'object') {
    bytes += primitiveSize(value)
    return value
  }
  if (value === null) return null
  if (typeof hint !== 'object' || hint === null || depth >= FAST_DEPTH) return copy(value, depth)
  if (Array.isArray(value)) {
    return Array.isArray(hint) ? copyArrayOver(value, hint, depth) : copy(value, depth)
  }
  if (Array.isArray(hint) || Object.getPrototypeOf(hint) !== Object.prototype) {
    return copy(value, depth)
  }
  return copyObjectOver(value, hint as Record<string, unknown>, depth)
}

function copyArrayOver(value: unknown[], hint: readonly unknown[], depth: number): unknown {
  const n = value.length
  const held = hint.length
  let out: unknown[] | undefined
  for (let i = 0; i < n; i++) {
    const was = i < held ? hint[i] : undefined
    const item = copyOver(value[i], was, depth + 1)
    if (out === undefined) {
      if (i < held && Object.is(item, was)) continue
      out = hint.slice(0, i)
    }
    out.push(item)
  }
  bytes += OBJECT_BASE + SLOT * n
  if (out === undefined) return n === held ? hint : Object.freeze(hint.slice(0, n))
  return Object.freeze(out)
}

/**
 * An object of the new value over the object `hint` at its place. The value's top level is
 * almost always what changed (a write changes a field of the state), so it is copied outright
 * ({@link copyNewObject}); below it, most objects are unchanged, so they are compared first and
 * copied only from the first difference ({@link copyChangedObject}).
 */
function copyObjectOver(value: object, hint: Record<string, unknown>, depth: number): unknown {
  return depth === 0 ? copyNewObject(value, hint, depth) : copyChangedObject(value, hint, depth)
}

function copyNewObject(value: object, hint: Record<string, unknown>, depth: number): unknown {
  const out = shallowCopy(value)
  let n = 0
  let same = true
  for (const k in out) {
    if (k === 'constructor') throw GIVE_UP
    const v = out[k]
    // `hint` is a plain object: a key it lacks reads undefined or an Object.prototype method,
    // which no stored part equals (functions are refused)
    const was = hint[k]
    if (typeof v === 'object' && v !== null) {
      const item = copyOver(v, was, depth + 1)
      out[k] = item
      if (item !== was) same = false
    } else {
      bytes += primitiveSize(v)
      if (!Object.is(v, was)) same = false
    }
    n++
  }
  bytes += OBJECT_BASE + SLOT * n
  return same && sameKeys(out, hint, n) ? hint : Object.freeze(out)
}

/** Whether `hint` has the `n` keys of `out`, in the same order. */
function sameKeys(out: object, hint: object, n: number): boolean {
  const held = Object.keys(hint)
  if (held.length !== n) return false
  let j = 0
  for (const k in out) if (k !== held[j++]) return false
  return true
}

/**
 * Reads each property of `value` once, in order, and allocates nothing while they equal the
 * hint's at the same place; from the first difference on, the copy takes the hint's earlier
 * properties and the new ones.
 */
function copyChangedObject(value: object, hint: Record<string, unknown>, depth: number): unknown {
  checkPlain(value)
  const held = Object.keys(hint)
  let out: Record<string, unknown> | undefined
  let n = 0
  for (const k in value) {
    if (k === '__proto__' || k === 'constructor') throw GIVE_UP
    const v = (value as Record<string, unknown>)[k]
    if (out === undefined) {
      // the same key at the same place: the keys so far are the hint's first ones, in order
      const same = k === held[n]
      const was = same ? hint[k] : undefined
      const item = copyOver(v, was, depth + 1)
      if (same && Object.is(item, was)) {
        n++
        continue
      }
      out = firstKeys(hint, held, n)
      out[k] = item
    } else {
      out[k] = copyOver(v, Object.hasOwn(hint, k) ? hint[k] : undefined, depth + 1)
    }
    n++
  }
  bytes += OBJECT_BASE + SLOT * n
  if (out !== undefined) return Object.freeze(out)
  return n === held.length ? hint : Object.freeze(firstKeys(hint, held, n))
}

/** A new object with the first `n` of `keys` of `from` (in that order). */
function firstKeys(
  from: Record<string, unknown>,
  keys: readonly string[],
  n: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (let j = 0; j < n; j++) out[keys[j] as string] = from[keys[j] as string]
  return out
}

const ARRAY_VALUES = Array.prototype[Symbol.iterator]
const ARRAY_ITERATOR = Object.getPrototypeOf([][Symbol.iterator]()) as { next: unknown }
const ARRAY_NEXT = ARRAY_ITERATOR.next

function walk(value: unknown, depth: number): void {
  if (typeof value !== 'object') {
    bytes += primitiveSize(value)
    return
  }
  if (value === null) return
  if (depth >= FAST_DEPTH) throw GIVE_UP
  if (Array.isArray(value)) {
    const n = value.length
    for (let i = 0; i < n; i++) walk(value[i], depth + 1)
    bytes += OBJECT_BASE + SLOT * n
    return
  }
  checkPlain(value)
  let n = 0
  for (const k in value) {
    if (k === '__proto__' || k === 'constructor') throw GIVE_UP
    walk((value as Record<string, unknown>)[k], depth + 1)
    n++
  }
  bytes += OBJECT_BASE + SLOT * n
}
