import { InvalidOptionError } from '@actor-cache/core'
import { plainObject } from './fields.js'

/**
 * What is sensitive, by namespace: `'value'` (the whole value) or dotted field paths. The same
 * shape as the encryption layer's `namespaces`, so one object configures both.
 */
export type SensitiveFields = Readonly<Record<string, 'value' | readonly string[]>>

/** Text that replaces a masked value. */
export const CENSOR = '[REDACTED]'

/** Options of {@link redactPaths}. */
export interface RedactPathsOptions {
  /**
   * Where values appear in your log objects; each field path is appended to each prefix.
   * @default ['value', 'audit.value', '*.value']
   */
  prefixes?: readonly string[]
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/

function segment(part: string): string {
  return IDENT.test(part) ? `.${part}` : `["${part}"]`
}

/**
 * pino `redact` paths for the sensitive fields: `redactPaths({ actors: ['email'] })` gives
 * `['value.email', 'audit.value.email', '*.value.email']`; a `'value'` namespace masks the whole
 * value. Pass them as `pino({ redact: { paths, censor: '[REDACTED]' } })`.
 */
export function redactPaths(fields: SensitiveFields, options: RedactPathsOptions = {}): string[] {
  if (typeof fields !== 'object' || fields === null) {
    throw new InvalidOptionError('fields', 'must map namespaces to field paths')
  }
  const prefixes = options.prefixes ?? ['value', 'audit.value', '*.value']
  const out = new Set<string>()
  for (const [ns, what] of Object.entries(fields)) {
    if (what !== 'value' && !Array.isArray(what)) {
      throw new InvalidOptionError(`fields.${ns}`, "must be 'value' or a list of field paths")
    }
    for (const prefix of prefixes) {
      if (what === 'value') {
        out.add(prefix)
        continue
      }
      for (const path of what as readonly string[]) {
        out.add(prefix + path.split('.').map(segment).join(''))
      }
    }
  }
  return [...out]
}

function maskPath(obj: unknown, parts: readonly string[], i: number, censor: string): unknown {
  if (!plainObject(obj)) return obj
  const part = parts[i] as string
  if (!Object.hasOwn(obj, part)) return obj
  const next = i === parts.length - 1 ? censor : maskPath(obj[part], parts, i + 1, censor)
  return { ...obj, [part]: next }
}

/**
 * A copy of `value` (a value of `namespace`) with its sensitive fields replaced by `censor`; the
 * whole value for a `'value'` namespace; `value` itself for a namespace with nothing sensitive.
 */
export function maskValue(
  fields: SensitiveFields,
  namespace: string,
  value: unknown,
  censor: string = CENSOR,
): unknown {
  const what = Object.hasOwn(fields, namespace) ? fields[namespace] : undefined
  if (what === undefined) return value
  if (what === 'value') return censor
  let out = value
  for (const path of what) out = maskPath(out, path.split('.'), 0, censor)
  return out
}
