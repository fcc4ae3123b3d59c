import { isPrototypePath } from './codec.js'
import { SerializationError } from './errors.js'

/**
 * Immutable snapshots of cacheable values, for in-process tiers that hand the same object to
 * every reader. The accepted types are exactly those {@link jsonSerializer} round-trips, so a
 * value read from memory has the same shape and types as one read from Redis or Postgres.
 */

const MAX_DEPTH = 1000

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

// Rough V8 object layout costs (64-bit, pointer compression off), used for byte budgets.
const OBJECT_BASE = 24
const SLOT = 8
const STRING_BASE = 16
const HEAP_NUMBER = 16

/**
 * Copies `value` into a deeply frozen structure and estimates its heap size. Accepts the same
 * types as the default serializer: primitives (including `undefined`, `bigint`, `-0`, `NaN`),
 * plain objects, arrays, `Date`, `Map`, `Set`. `Date`, `Map` and `Set` come back with their
 * mutators throwing. Shared references are copied once per occurrence, as the serializer would.
 * @throws {SerializationError} for cycles, functions, symbols, class instances, `__proto__` keys
 */
export function freezeValue<T>(value: T): FrozenValue<T> {
  const state: WalkState = { key: '', size: 0, stack: new Set<object>(), copy: true }
  const out = copy(value, state, 0, '$') as T
  return { value: out, size: state.size }
}

/**
 * Checks `value` against the same rules as {@link freezeValue} and estimates its heap size,
 * without copying or freezing it.
 * @throws {SerializationError}
 */
export function measureValue(value: unknown): number {
  const state: WalkState = { key: '', size: 0, stack: new Set<object>(), copy: false }
  copy(value, state, 0, '$')
  return state.size
}

interface WalkState {
  /** Property name under which the value being copied sits ('' at the root and in arrays). */
  key: string
  size: number
  stack: Set<object>
  copy: boolean
}

function copy(value: unknown, state: WalkState, depth: number, path: string): unknown {
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
      throw new SerializationError(`cannot store a ${typeof value} (at ${path})`, { path })
  }
  if (value === null) return null
  if (depth >= MAX_DEPTH) {
    throw new SerializationError(`value is nested deeper than ${MAX_DEPTH} levels (at ${path})`, {
      path,
    })
  }
  if (state.stack.has(value)) {
    throw new SerializationError(`cannot store a value with a cycle (at ${path})`, { path })
  }
  state.stack.add(value)
  const key = state.key
  state.key = ''
  if (isPrototypePath(key, value)) {
    throw new SerializationError(`cannot store a "constructor.prototype" path (at ${path})`, {
      path,
    })
  }
  const result = copyObject(value, state, depth + 1, path)
  state.stack.delete(value)
  return result
}

function copyObject(value: object, state: WalkState, depth: number, path: string): unknown {
  const keep = state.copy
  if (Array.isArray(value)) {
    const arr = keep ? new Array<unknown>(value.length) : value
    for (let i = 0; i < value.length; i++) {
      const item = copy(value[i], state, depth, `${path}[${i}]`)
      if (keep) arr[i] = item
    }
    state.size += OBJECT_BASE + SLOT * value.length
    return keep ? Object.freeze(arr) : value
  }
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new SerializationError(`cannot store symbol-keyed properties (at ${path})`, { path })
    }
    const obj: Record<string, unknown> = {}
    let n = 0
    for (const k of Object.keys(value)) {
      if (k === '__proto__') {
        throw new SerializationError(
          `cannot store an object with an own "__proto__" key (at ${path})`,
          { path },
        )
      }
      state.key = k
      const item = copy((value as Record<string, unknown>)[k], state, depth, `${path}.${k}`)
      state.key = ''
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
      const ck = copy(k, state, depth, `${path}<key ${i}>`)
      const cv = copy(v, state, depth, `${path}<value ${i}>`)
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
      const cv = copy(v, state, depth, `${path}<item ${i++}>`)
      if (keep) items.push(cv)
    }
    state.size += OBJECT_BASE * 2 + SLOT * 2 * value.size
    return keep ? frozen(new Set(items), SET_GUARDS) : value
  }
  const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'object'
  throw new SerializationError(
    `cannot store an instance of ${name} (at ${path}); store plain objects, arrays, Date, Map, Set, bigint`,
    { path },
  )
}
