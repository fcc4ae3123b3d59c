import type { Serializer } from './codec.js'
import { cyclePath, MAX_VALUE_DEPTH, nestedTooDeep, tooDeepPath } from './depth.js'
import { ActorCacheError, DecodeError, SerializationError } from './errors.js'

// JSON with exact round-trips of the types game state uses: the rarer types travel as tagged
// objects ({"$t": ...}), and stored text that could pollute a prototype is refused.

const TAG = '$t'
const ESCAPED_TAG_KEY = /^\$+t$/
const UNESCAPE_TAG_KEY = /^\$\$+t$/
const UNDEFINED = Symbol('undefined')

type Tagged = { $t: string; v?: unknown }

const at = (key: string): string => (key === '' ? '' : ` (at "${key}")`)

function typeName(value: object): string {
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null
  return proto?.constructor?.name ?? 'object'
}

function escapeTagKeys(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(obj)) out[ESCAPED_TAG_KEY.test(k) ? `$${k}` : k] = obj[k]
  return out
}

function replacer(this: Record<string, unknown>, key: string, _value: unknown): unknown {
  const raw = this[key]
  switch (typeof raw) {
    case 'string':
    case 'boolean':
      return raw
    case 'number':
      if (Number.isFinite(raw)) return Object.is(raw, -0) ? { [TAG]: 'num', v: '-0' } : raw
      return { [TAG]: 'num', v: String(raw) }
    case 'bigint':
      return { [TAG]: 'bigint', v: raw.toString() }
    case 'undefined':
      return { [TAG]: 'undef' }
    case 'object': {
      if (raw === null) return null
      if (Array.isArray(raw)) return raw
      const proto = Object.getPrototypeOf(raw)
      if (proto === Object.prototype || proto === null) {
        if (Object.hasOwn(raw, '__proto__')) {
          throw new SerializationError(
            `cannot store an object with an own "__proto__" key${at(key)}`,
          )
        }
        if (Object.getOwnPropertySymbols(raw).length > 0) {
          throw new SerializationError(`cannot store symbol-keyed properties${at(key)}`)
        }
        if (isPrototypePath(key, raw)) {
          throw new SerializationError(`cannot store a "constructor.prototype" path${at(key)}`)
        }
        for (const k in raw) {
          if (k.charCodeAt(0) === 36 && ESCAPED_TAG_KEY.test(k)) {
            return escapeTagKeys(raw as Record<string, unknown>)
          }
        }
        return raw
      }
      if (raw instanceof Date) {
        const t = raw.getTime()
        return { [TAG]: 'date', v: Number.isNaN(t) ? 'NaN' : raw.toISOString() }
      }
      if (raw instanceof Map) return { [TAG]: 'map', v: [...raw] }
      if (raw instanceof Set) return { [TAG]: 'set', v: [...raw] }
      throw new SerializationError(
        `cannot store an instance of ${typeName(raw)}${at(key)}; store plain objects, arrays, Date, Map, Set, bigint`,
      )
    }
    default:
      throw new SerializationError(`cannot store a ${typeof raw}${at(key)}`)
  }
}

function reviveTagged(tagged: Tagged): unknown {
  const v = tagged.v
  switch (tagged.$t) {
    case 'undef':
      return UNDEFINED
    case 'num':
      if (v === '-0') return -0
      if (v === 'NaN') return Number.NaN
      if (v === 'Infinity') return Number.POSITIVE_INFINITY
      if (v === '-Infinity') return Number.NEGATIVE_INFINITY
      break
    case 'bigint':
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v)
      break
    case 'date':
      if (v === 'NaN') return new Date(Number.NaN)
      if (typeof v === 'string') {
        const d = new Date(v)
        if (!Number.isNaN(d.getTime())) return d
      }
      break
    case 'map':
      if (Array.isArray(v) && v.every((e) => Array.isArray(e) && e.length === 2)) {
        return new Map((v as [unknown, unknown][]).map(([k, x]) => [restore(k), restore(x)]))
      }
      break
    case 'set':
      if (Array.isArray(v)) return new Set(v.map(restore))
      break
  }
  throw new DecodeError(`stored data has a malformed "${String(tagged.$t)}" value`)
}

/**
 * `constructor: { prototype: ... }` is how unsafe deep-merge helpers get walked into
 * `Object.prototype`. Rejected when storing and when reading, so both sides agree.
 */
export function isPrototypePath(key: string, value: object): boolean {
  return key === 'constructor' && !Array.isArray(value) && Object.hasOwn(value, 'prototype')
}

const restore = (x: unknown): unknown => (x === UNDEFINED ? undefined : x)

function reviver(this: unknown, key: string, value: unknown): unknown {
  if (key === '__proto__') throw new DecodeError('stored data contains a "__proto__" key')
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (value[i] === UNDEFINED) value[i] = undefined
    return value
  }
  const obj = value as Record<string, unknown>
  if (Object.hasOwn(obj, TAG)) return reviveTagged(obj as Tagged)
  if (isPrototypePath(key, obj)) {
    throw new DecodeError('stored data contains a "constructor.prototype" path')
  }
  let renamed: Record<string, unknown> | undefined
  for (const k of Object.keys(obj)) {
    if (obj[k] === UNDEFINED) obj[k] = undefined
    if (UNESCAPE_TAG_KEY.test(k)) renamed = obj
  }
  if (renamed) {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(obj)) out[UNESCAPE_TAG_KEY.test(k) ? k.slice(1) : k] = obj[k]
    return out
  }
  return obj
}

/**
 * True when plain `JSON.stringify` writes exactly what the replacer would: strings, finite
 * numbers other than -0, booleans, null, dense arrays and plain objects without symbol keys,
 * `$…t` keys, `__proto__` keys, `constructor.prototype` paths or undefined values. Anything else
 * (or nesting beyond `MAX_VALUE_DEPTH`, which also stops cycles) takes the replacer path, where
 * the depth is checked.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0)
    case 'object':
      break
    default:
      return false
  }
  if (value === null) return true
  if (depth >= MAX_VALUE_DEPTH) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || !isPlainJson(value[i], depth + 1)) return false
    }
    return true
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  if (Object.getOwnPropertySymbols(value).length > 0) return false
  for (const k in value) {
    if (k.charCodeAt(0) === 36 || k === '__proto__') return false
    const v = (value as Record<string, unknown>)[k]
    if (k === 'constructor' && typeof v === 'object' && v !== null) return false
    if (!isPlainJson(v, depth + 1)) return false
  }
  return true
}

/** True when `text` may hold tags, escapes or hostile keys, so the slower reviver must run. */
function needsReviver(text: string): boolean {
  return (
    text.includes('$t"') ||
    text.includes('\\u') ||
    text.includes('__proto__') ||
    text.includes('constructor')
  )
}

const tooDeepToRead = (cause?: unknown): DecodeError =>
  new DecodeError(
    `stored data is nested deeper than ${MAX_VALUE_DEPTH} levels`,
    cause === undefined ? undefined : { cause },
  )

/**
 * The default serializer: JSON text, with exact round-trips of `undefined`, `-0`, `NaN`,
 * `±Infinity`, `bigint`, `Date`, `Map` and `Set` (tagged as `{"$t": ...}` objects; user keys named
 * `$t` are escaped). Plain JSON data is stored as plain JSON.
 *
 * Rejected at encode time with `SerializationError`: cycles, functions, symbols, symbol keys,
 * class instances (including `Buffer` and typed arrays), own `__proto__` keys, nesting deeper
 * than `MAX_VALUE_DEPTH`.
 * Rejected at decode time with `DecodeError`: invalid JSON, `__proto__` keys, `constructor.prototype`
 * paths, malformed tags, nesting deeper than `MAX_VALUE_DEPTH`.
 */
export const jsonSerializer: Serializer = Object.freeze({
  name: 'json',
  serialize(value: unknown): string {
    // Plain JSON data (the common case) skips the replacer, which costs a native-to-JS call per
    // node; the output is the same either way.
    if (isPlainJson(value, 0)) return JSON.stringify(value)
    if (nestedTooDeep(value)) {
      const path = cyclePath(value)
      if (path !== undefined) {
        throw new SerializationError(`cannot store a value with a cycle (at ${path})`, { path })
      }
      const deep = tooDeepPath(value)
      throw new SerializationError(
        `cannot store a value nested deeper than ${MAX_VALUE_DEPTH} levels${deep === undefined ? '' : ` (at ${deep})`}`,
        deep === undefined ? undefined : { path: deep },
      )
    }
    let text: string | undefined
    try {
      text = JSON.stringify(value, replacer)
    } catch (error) {
      if (error instanceof ActorCacheError) throw error
      const cyclic = error instanceof TypeError && /circular/i.test(error.message)
      throw new SerializationError(
        cyclic || error instanceof RangeError
          ? 'cannot store a value with a cycle (or nested too deeply)'
          : `cannot serialize value: ${(error as Error).message}`,
        { cause: error },
      )
    }
    if (text === undefined) throw new SerializationError(`cannot store a ${typeof value}`)
    return text
  },
  deserialize(text: string): unknown {
    if (typeof text !== 'string') throw new DecodeError(`expected text, got ${typeof text}`)
    let value: unknown
    try {
      value = needsReviver(text) ? JSON.parse(text, reviver) : JSON.parse(text)
    } catch (error) {
      if (error instanceof ActorCacheError) throw error
      // The reviver recurses: hostile nesting overflows the stack before the check below.
      if (error instanceof RangeError && /call stack/i.test(error.message)) {
        throw tooDeepToRead(error)
      }
      throw new DecodeError(`stored data is not valid JSON: ${(error as Error).message}`, {
        cause: error,
      })
    }
    // Refused here as on write, so no tier hands out what no caller could have stored. Each
    // level takes at least two characters ("[]"), so shorter text needs no walk.
    if (text.length > 2 * MAX_VALUE_DEPTH && nestedTooDeep(value)) throw tooDeepToRead()
    return restore(value)
  },
})
