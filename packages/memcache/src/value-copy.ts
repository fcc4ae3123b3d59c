import { type FrozenValue, freezeValue, measureValue } from '@actor-cache/core'

/**
 * The write path's value handling, fast for the shapes actor state has: primitives, plain
 * objects and arrays, nested a few levels. Results equal core's `freezeValue` / `measureValue`
 * (same copy, same size estimate, same values refused); anything else (Date, Map, Set, bigint,
 * functions, symbols, class instances, `__proto__` or `constructor` keys, nesting deeper than
 * {@link FAST_DEPTH}, cycles) goes to core's full walk, which has every rule and names the path
 * of a refused part. Such a value is walked twice up to where the fast walk gave up.
 *
 * The speed comes from what the fast walk does not need: no path kept for error messages, no
 * ancestor list for cycles (a cycle is just deeper than {@link FAST_DEPTH}), no nesting
 * arithmetic (the limit is far beyond {@link FAST_DEPTH}), no key arrays.
 */

/** Nesting the fast walk follows before handing the value to core. */
const FAST_DEPTH = 32

// The size model of core's values.ts (V8 object layout, 64-bit): kept equal by the tests, which
// compare every result with core's.
const OBJECT_BASE = 24
const SLOT = 8
const STRING_BASE = 16
const HEAP_NUMBER = 16

/** Raised inside the fast walk when the value needs core's walk. */
const GIVE_UP: unique symbol = Symbol('give up')

/** A deeply frozen copy of `value` and its estimated size, as core's `freezeValue` returns. */
export function freezeCopy<T>(value: T): FrozenValue<T> {
  const size = { bytes: 0 }
  try {
    if (prototypeIsClean()) return { value: copy(value, 0, size) as T, size: size.bytes }
  } catch (err) {
    if (err !== GIVE_UP) throw err
  }
  return freezeValue(value)
}

/** The estimated size of `value` after checking it is storable, as core's `measureValue`. */
export function measure(value: unknown): number {
  const size = { bytes: 0 }
  try {
    if (prototypeIsClean()) {
      walk(value, 0, size)
      return size.bytes
    }
  } catch (err) {
    if (err !== GIVE_UP) throw err
  }
  return measureValue(value)
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

function copy(value: unknown, depth: number, size: { bytes: number }): unknown {
  if (typeof value !== 'object') {
    size.bytes += primitiveSize(value)
    return value
  }
  if (value === null) return null
  if (depth >= FAST_DEPTH) throw GIVE_UP
  if (Array.isArray(value)) {
    const n = value.length
    const out = new Array<unknown>(n)
    for (let i = 0; i < n; i++) out[i] = copy(value[i], depth + 1, size)
    size.bytes += OBJECT_BASE + SLOT * n
    return Object.freeze(out)
  }
  checkPlain(value)
  const out: Record<string, unknown> = {}
  let n = 0
  for (const k in value) {
    if (k === '__proto__' || k === 'constructor') throw GIVE_UP
    out[k] = copy((value as Record<string, unknown>)[k], depth + 1, size)
    n++
  }
  size.bytes += OBJECT_BASE + SLOT * n
  return Object.freeze(out)
}

function walk(value: unknown, depth: number, size: { bytes: number }): void {
  if (typeof value !== 'object') {
    size.bytes += primitiveSize(value)
    return
  }
  if (value === null) return
  if (depth >= FAST_DEPTH) throw GIVE_UP
  if (Array.isArray(value)) {
    const n = value.length
    for (let i = 0; i < n; i++) walk(value[i], depth + 1, size)
    size.bytes += OBJECT_BASE + SLOT * n
    return
  }
  checkPlain(value)
  let n = 0
  for (const k in value) {
    if (k === '__proto__' || k === 'constructor') throw GIVE_UP
    walk((value as Record<string, unknown>)[k], depth + 1, size)
    n++
  }
  size.bytes += OBJECT_BASE + SLOT * n
}
