import { formatPath, levelsOf, MAX_VALUE_DEPTH } from './depth.js'
import { SerializationError } from './errors.js'
import { isPrototypePath } from './json-serializer.js'

/**
 * Immutable snapshots of cacheable values, for in-process tiers that hand the same object to
 * every reader. The accepted types are exactly those {@link jsonSerializer} round-trips, so a
 * value read from memory has the same shape and types as one read from Redis or Postgres.
 */

function readOnly(name: string): never {
  throw new TypeError(
    `Cannot ${name}: cached values are read-only (copy with structuredClone to modify)`,
  )
}

// Map, Set and Date keep their own constructor (so equality helpers and `constructor` checks see
// a plain Map/Set/Date); their mutators are shadowed by non-enumerable own properties that throw.
const guards = (names: readonly string[]): PropertyDescriptorMap =>
  Object.fromEntries(
    names.map((name) => [
      name,
      { value: () => readOnly(name), enumerable: false, writable: false },
    ]),
  )
const MAP_GUARDS = guards(['set', 'delete', 'clear'])
const SET_GUARDS = guards(['add', 'delete', 'clear'])
const DATE_GUARDS = guards(
  Object.getOwnPropertyNames(Date.prototype).filter((n) => n.startsWith('set')),
)

function frozen<T extends object>(value: T, guardsOf: PropertyDescriptorMap): T {
  return Object.freeze(Object.defineProperties(value, guardsOf))
}

/** Result of {@link freezeValue}. */
export interface FrozenValue<T> {
  /** Deep, frozen copy of the input. */
  value: T
  /** Estimated V8 heap bytes the copy occupies. */
  size: number
}

// Rough V8 object layout costs (64-bit, pointer compression off), used for byte budgets; the
// fast walk of fast-values.ts counts with the same ones.
export const OBJECT_BASE = 24
export const SLOT = 8
export const STRING_BASE = 16
export const HEAP_NUMBER = 16

/**
 * The full walk behind `freezeValue`: every accepted type, every rule, and the path of a refused
 * part in its error. `freezeValue` tries the fast walk of fast-values.ts first.
 * @throws {SerializationError}
 */
export function freezeValueFully<T>(value: T): FrozenValue<T> {
  const state = newState(true)
  const out = copy(value, state) as T
  return { value: out, size: state.size }
}

/**
 * The full walk behind `measureValue` (see {@link freezeValueFully}).
 * @throws {SerializationError}
 */
export function measureValueFully(value: unknown): number {
  const state = newState(false)
  copy(value, state)
  return state.size
}

interface WalkState {
  /** Copy and freeze (true) or only validate and measure (false). */
  copy: boolean
  size: number
  /** Objects being walked, root first: detects cycles. */
  ancestors: object[]
  /** Property names or indexes from the root to the value being walked (for error messages). */
  path: (string | number)[]
  /** Property name under which the value being walked sits ('' at the root and in collections). */
  key: string
  /** Levels of the stored form enclosing the value being walked (see `MAX_VALUE_DEPTH`). */
  level: number
}

const newState = (copy: boolean): WalkState => ({
  copy,
  size: 0,
  ancestors: [],
  path: [],
  key: '',
  level: 0,
})

function fail(state: WalkState, message: string): never {
  const path = formatPath(state.path)
  throw new SerializationError(`${message} (at ${path})`, { path })
}

function copy(value: unknown, state: WalkState): unknown {
  // Counted as the serializer counts, so memory and the shared tiers refuse the same values.
  const levels = levelsOf(value)
  if (state.level + levels.own > MAX_VALUE_DEPTH) {
    fail(state, `value is nested deeper than ${MAX_VALUE_DEPTH} levels (as stored)`)
  }
  switch (typeof value) {
    case 'string':
      state.size += STRING_BASE + value.length
      return value
    case 'number':
      state.size += Number.isInteger(value) && Math.abs(value) < 2 ** 30 ? 0 : HEAP_NUMBER
      return value
    case 'boolean':
    case 'undefined':
      return value
    case 'bigint':
      state.size += 16 + SLOT * Math.ceil(value.toString(16).length / 16)
      return value
    case 'object':
      break
    default:
      return fail(state, `cannot store a ${typeof value}`)
  }
  if (value === null) return null
  const { ancestors } = state
  if (ancestors.includes(value)) fail(state, 'cannot store a value with a cycle')
  const key = state.key
  state.key = ''
  if (isPrototypePath(key, value)) fail(state, 'cannot store a "constructor.prototype" path')
  ancestors.push(value)
  state.level += levels.inner
  const result = copyObject(value, state)
  state.level -= levels.inner
  ancestors.pop()
  return result
}

/** Walks one child: records where it sits for error messages and prototype-path checks. */
function child(value: unknown, state: WalkState, at: string | number, key = ''): unknown {
  state.path.push(at)
  state.key = key
  const out = copy(value, state)
  state.key = ''
  state.path.pop()
  return out
}

function copyObject(value: object, state: WalkState): unknown {
  const keep = state.copy
  if (Array.isArray(value)) {
    const arr = keep ? new Array<unknown>(value.length) : value
    for (let i = 0; i < value.length; i++) {
      const item = child(value[i], state, i)
      if (keep) arr[i] = item
    }
    state.size += OBJECT_BASE + SLOT * value.length
    return keep ? Object.freeze(arr) : value
  }
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    if (Object.getOwnPropertySymbols(value).length > 0)
      fail(state, 'cannot store symbol-keyed properties')
    const obj: Record<string, unknown> = {}
    let n = 0
    for (const k of Object.keys(value)) {
      if (k === '__proto__') fail(state, 'cannot store an object with an own "__proto__" key')
      const item = child((value as Record<string, unknown>)[k], state, k, k)
      if (keep) obj[k] = item
      n++
    }
    state.size += OBJECT_BASE + SLOT * n
    return keep ? Object.freeze(obj) : value
  }
  if (value instanceof Date) {
    state.size += OBJECT_BASE + HEAP_NUMBER
    return keep ? frozen(new Date(value.getTime()), DATE_GUARDS) : value
  }
  if (value instanceof Map) {
    const entries: [unknown, unknown][] = []
    let i = 0
    for (const [k, v] of value) {
      const ck = child(k, state, `<key ${i}>`)
      const cv = child(v, state, `<value ${i}>`)
      if (keep) entries.push([ck, cv])
      i++
    }
    state.size += OBJECT_BASE * 2 + SLOT * 3 * value.size
    return keep ? frozen(new Map(entries), MAP_GUARDS) : value
  }
  if (value instanceof Set) {
    const items: unknown[] = []
    let i = 0
    for (const v of value) {
      const cv = child(v, state, `<item ${i++}>`)
      if (keep) items.push(cv)
    }
    state.size += OBJECT_BASE * 2 + SLOT * 2 * value.size
    return keep ? frozen(new Set(items), SET_GUARDS) : value
  }
  const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'object'
  return fail(
    state,
    `cannot store an instance of ${name}; store plain objects, arrays, Date, Map, Set, bigint`,
  )
}
