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

/**
 * One field name as a pino path segment. pino's path parser has no escapes: a bracket or comma in
 * a name, or both quote characters, would give a path that pino refuses or one that silently
 * redacts nothing, so such names are refused here.
 */
function segment(part: string, option: string): string {
  if (IDENT.test(part)) return `.${part}`
  const quote = part.includes('"') ? "'" : '"'
  if (/[[\],]/.test(part) || part.includes(quote)) {
    throw new InvalidOptionError(
      option,
      `field name ${JSON.stringify(part)} cannot be written as a pino redact path (it has a bracket, a comma or both quote characters)`,
    )
  }
  return `[${quote}${part}${quote}]`
}

/**
 * pino `redact` paths for the sensitive fields: `redactPaths({ actors: ['email'] })` gives
 * `['value.email', 'audit.value.email', '*.value.email']`; a `'value'` namespace masks the whole
 * value. Pass them as `pino({ redact: { paths, censor: '[REDACTED]' } })`. pino's paths do not
 * know namespaces: a field listed for one namespace is censored in every logged value, and a
 * `'value'` namespace censors every logged value whole. Field names with a bracket, a comma or both
 * quote characters cannot be written as pino paths and fail with `InvalidOptionError`.
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
        const option = `fields.${ns}`
        out.add(
          prefix +
            path
              .split('.')
              .map((part) => segment(part, option))
              .join(''),
        )
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
