import bytes from 'bytes'
import ms from 'ms'
import { z } from 'zod'
import { validateNamespace } from './keys.js'

/**
 * The field types of the configuration file: sizes, durations, fractions, integers, names, and
 * the wording of their errors, shared by every section's schema so each reads units and words
 * its errors the same way.
 */

const SIZE_RE = /^\s*\d+(?:\.\d+)?\s*(?:b|kb|mb|gb|tb|pb)\s*$/i
const DURATION_RE = /^\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*$/i

/**
 * A byte size: `"100MB"` (binary units: 1 MB = 1024 × 1024 bytes; B, KB, MB, GB, TB, PB) or a
 * non-negative integer number of bytes.
 */
export const size = z
  .union([z.string(), z.number()], {
    error: (i) => `expected a size like "100MB", got ${describe(i.input)}`,
  })
  .transform((input, ctx) => {
    if (typeof input === 'number') {
      if (Number.isSafeInteger(input) && input >= 0) return input
    } else if (SIZE_RE.test(input)) {
      // bytes.parse falls back to parseInt (dropping the unit) on whitespace: normalise first
      const n = bytes.parse(input.replace(/\s+/g, ''))
      if (n !== null && Number.isSafeInteger(Math.floor(n))) return Math.floor(n)
    }
    ctx.addIssue({
      code: 'custom',
      message: `expected a size like "100MB", got ${JSON.stringify(input)}`,
    })
    return z.NEVER
  })

/**
 * A duration: `"300s"` (ms, s, m, h, d, w), greater than zero unless `allowZero`; `"never"`
 * (Infinity) when `allowNever`. A bare number is refused, since it has no unit.
 */
export function duration(options: { allowZero?: boolean; allowNever?: boolean } = {}) {
  const example = options.allowNever ? '"300s" or "never"' : '"300s"'
  return z
    .union([z.string(), z.number()], {
      error: (i) => `expected a duration like ${example}, got ${describe(i.input)}`,
    })
    .transform((input, ctx) => {
      if (typeof input === 'string') {
        if (options.allowNever && input.trim() === 'never') return Infinity
        if (DURATION_RE.test(input)) {
          const n = ms(input.trim().replace(/\s+/g, '') as ms.StringValue)
          if (
            typeof n === 'number' &&
            Number.isFinite(n) &&
            (n > 0 || (options.allowZero && n === 0))
          ) {
            return n
          }
          if (n === 0) {
            ctx.addIssue({
              code: 'custom',
              message: `must be greater than zero, got ${JSON.stringify(input)}`,
            })
            return z.NEVER
          }
        }
      }
      const hint =
        typeof input === 'number'
          ? ' (a bare number has no unit; write e.g. "300s" or "250ms")'
          : ''
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration like ${example}, got ${JSON.stringify(input)}${hint}`,
      })
      return z.NEVER
    })
}

/** A fraction: `0.1` or `"10%"`, between 0 and 1. */
export const fraction = z
  .union([z.string(), z.number()], {
    error: (i) => `expected a fraction like 0.1 or "10%", got ${describe(i.input)}`,
  })
  .transform((input, ctx) => {
    let n: number = Number.NaN
    if (typeof input === 'number') n = input
    else if (/^\s*\d+(?:\.\d+)?\s*%\s*$/.test(input)) n = Number.parseFloat(input) / 100
    if (n >= 0 && n <= 1) return n
    ctx.addIssue({
      code: 'custom',
      message: `expected a fraction like 0.1 or "10%", got ${JSON.stringify(input)}`,
    })
    return z.NEVER
  })

/** An integer from `min` to `max`. */
export const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .number({ error: (i) => `expected an integer, got ${describe(i.input)}` })
    .int({ error: (i) => `expected an integer, got ${describe(i.input)}` })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` })

export const bool = z.boolean({ error: (i) => `expected true or false, got ${describe(i.input)}` })
export const str = z.string({ error: (i) => `expected a string, got ${describe(i.input)}` })

/** A namespace name, checked as the tiers check it. */
export const namespaceName = str.superRefine((value, ctx) => {
  try {
    validateNamespace(value)
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message })
  }
})

/** A mapping keyed by namespace names, each key checked like a namespace. */
export function namespaceRecord<T extends z.ZodType>(value: T) {
  return z.record(str, value).superRefine((record, ctx) => {
    for (const key of Object.keys(record)) {
      try {
        validateNamespace(key)
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: [key], message: (error as Error).message })
      }
    }
  })
}

/** How an input is named in an error: its text, or what kind of thing it is. */
export function describe(input: unknown): string {
  if (input === undefined) return 'nothing'
  if (typeof input === 'string') return JSON.stringify(input)
  if (Array.isArray(input)) return 'a list'
  if (input === null) return 'null'
  return typeof input === 'object' ? 'a mapping' : String(input)
}

/** One of `values`, naming them all when the input is something else. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (i) =>
      `expected one of ${values.map((v) => `"${v}"`).join(', ')}, got ${describe(i.input)}`,
  })
}
