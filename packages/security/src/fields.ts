import { InvalidOptionError, SerializationError } from '@actor-cache/core'

/** One dotted path through plain objects (`profile.phone`), with a copy-on-write update. */
export interface FieldPath {
  readonly name: string
  readonly parts: readonly string[]
  /** A copy of `obj` with the value at the path replaced by `fn(value)`; absent paths unchanged. */
  update(obj: Record<string, unknown>, fn: (value: unknown) => unknown): Record<string, unknown>
}

const PART = /^[A-Za-z0-9_$-]{1,128}$/
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])

/** True for `{}`-like objects (no class instances, arrays or null). */
export function plainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function update(
  obj: Record<string, unknown>,
  parts: readonly string[],
  i: number,
  fn: (value: unknown) => unknown,
): Record<string, unknown> {
  const part = parts[i] as string
  if (!Object.hasOwn(obj, part) || obj[part] === undefined) return obj
  const current = obj[part]
  let next: unknown
  if (i === parts.length - 1) next = fn(current)
  else if (plainObject(current)) next = update(current, parts, i + 1, fn)
  else return obj
  return { ...obj, [part]: next }
}

/**
 * Parses field paths like `email` or `profile.phone`.
 * @throws {InvalidOptionError} naming `option`
 */
export function parseFieldPaths(paths: readonly unknown[], option: string): FieldPath[] {
  if (paths.length === 0) throw new InvalidOptionError(option, 'must list at least one field')
  const seen = new Set<string>()
  return paths.map((p, i) => {
    const parts = typeof p === 'string' ? p.split('.') : []
    if (parts.length === 0 || parts.some((x) => !PART.test(x) || FORBIDDEN.has(x))) {
      throw new InvalidOptionError(
        `${option}[${i}]`,
        `must be a dotted path of field names like "email" or "profile.phone", got ${JSON.stringify(p) ?? String(p)}`,
      )
    }
    const name = parts.join('.')
    if (seen.has(name)) throw new InvalidOptionError(`${option}[${i}]`, `"${name}" appears twice`)
    seen.add(name)
    return { name, parts, update: (obj, fn) => update(obj, parts, 0, fn) }
  })
}

/**
 * Replaces each listed field of `value` by `sealOne(field, fieldValue)`.
 * @throws {SerializationError} when `value` is not a plain object: its fields could not be found
 */
export function sealFields(
  value: unknown,
  fields: readonly FieldPath[],
  namespace: string,
  key: string,
  sealOne: (field: string, value: unknown) => unknown,
): Record<string, unknown> {
  if (!plainObject(value)) {
    throw new SerializationError(
      `namespace "${namespace}" encrypts fields, so its values must be plain objects; got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
      { namespace, key },
    )
  }
  let out = value
  for (const f of fields) out = f.update(out, (v) => sealOne(f.name, v))
  return out
}
