import { InvalidKeyError } from './errors.js'

/** Longest accepted key, in UTF-16 code units. Keeps `(namespace, key)` inside a Postgres btree row. */
export const MAX_KEY_LENGTH = 512
/** Longest accepted namespace. */
export const MAX_NAMESPACE_LENGTH = 64
/** Longest accepted tag. */
export const MAX_TAG_LENGTH = 128
/** Most tags one entry may carry. */
export const MAX_TAGS = 32

const NAMESPACE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
// C0 controls, DEL and C1 controls: invisible in logs, ambiguous in protocols.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/

function describe(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  }
  return value === null ? 'null' : typeof value
}

// Accepts the common case in one test: no controls, no surrogates at all (the rare keys with
// astral characters take the detailed path, which checks the surrogates are paired).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const PLAIN_KEY_RE = /^[^\u0000-\u001f\u007f-\u009f\ud800-\udfff]+$/

function checkText(kind: string, value: unknown, max: number, namespace?: string): string {
  if (typeof value === 'string' && value.length <= max && PLAIN_KEY_RE.test(value)) return value
  const ctx = namespace === undefined ? {} : { namespace }
  if (typeof value !== 'string') {
    throw new InvalidKeyError(`${kind} must be a string, got ${describe(value)}`, ctx)
  }
  if (value.length === 0) throw new InvalidKeyError(`${kind} must not be empty`, ctx)
  if (value.length > max) {
    throw new InvalidKeyError(
      `${kind} is ${value.length} characters long; the limit is ${max}`,
      ctx,
    )
  }
  if (CONTROL_RE.test(value)) {
    throw new InvalidKeyError(`${kind} ${describe(value)} contains a control character`, ctx)
  }
  if (!value.isWellFormed()) {
    throw new InvalidKeyError(`${kind} ${describe(value)} contains a lone surrogate`, ctx)
  }
  return value
}

/**
 * Validates a namespace (an entity type such as `primary_core`): 1–64 characters of
 * `A-Z a-z 0-9 _ . -`, starting with a letter or digit. No `:` so `<prefix>:<namespace>:<key>`
 * stays unambiguous.
 * @throws {InvalidKeyError}
 */
export function validateNamespace(namespace: unknown): string {
  checkText('namespace', namespace, MAX_NAMESPACE_LENGTH)
  if (!NAMESPACE_RE.test(namespace as string)) {
    throw new InvalidKeyError(
      `namespace ${describe(namespace)} may contain only letters, digits, "_", "." and "-", and must start with a letter or digit`,
    )
  }
  return namespace as string
}

/**
 * Validates a key: a non-empty, well-formed string of at most {@link MAX_KEY_LENGTH} code units
 * without control characters. Any other character, `:` and glob metacharacters included, is allowed.
 * @throws {InvalidKeyError}
 */
export function validateKey(key: unknown, namespace?: string): string {
  return checkText('key', key, MAX_KEY_LENGTH, namespace)
}

/**
 * Validates a list of tags (at most {@link MAX_TAGS}, each like a key but at most
 * {@link MAX_TAG_LENGTH} long) and returns it deduplicated and frozen.
 * @throws {InvalidKeyError}
 */
export function validateTags(tags: unknown, namespace?: string): readonly string[] {
  if (!Array.isArray(tags)) {
    throw new InvalidKeyError(`tags must be an array of strings, got ${describe(tags)}`)
  }
  if (tags.length > MAX_TAGS) {
    throw new InvalidKeyError(`an entry may carry at most ${MAX_TAGS} tags, got ${tags.length}`)
  }
  for (const tag of tags) checkText('tag', tag, MAX_TAG_LENGTH, namespace)
  return Object.freeze(tags.length < 2 ? [...tags] : [...new Set<string>(tags)])
}

/** Joins a namespace and key the way every tier names entries: `<namespace>:<key>`. */
export function joinKey(namespace: string, key: string): string {
  return `${namespace}:${key}`
}

// ---------------------------------------------------------------------------------------------
// Glob patterns
// ---------------------------------------------------------------------------------------------

/** Characters with a meaning in glob patterns. */
const GLOB_META_RE = /[*?[\]\\^!-]/g

/**
 * Escapes user text so that, inside a glob pattern, it matches only itself.
 * @example escapeGlob('a*b') === 'a\\*b'
 */
export function escapeGlob(text: string): string {
  return text.replace(GLOB_META_RE, '\\$&')
}

/**
 * Tagged template that builds a glob pattern where every interpolated value is escaped, so
 * user text can never widen the pattern.
 * @example glob`actor:${actorId}:*` // actorId "*" matches only the literal key "actor:*:..."
 */
export function glob(strings: TemplateStringsArray, ...values: readonly unknown[]): string {
  let out = strings[0] ?? ''
  for (let i = 0; i < values.length; i++) {
    // Escaping only protects text that stands outside a class and after a complete escape.
    const { inClass, danglingEscape } = scanGlobState(out)
    if (inClass)
      throw new InvalidKeyError('glob: a value may not be interpolated inside a "[...]" class')
    if (danglingEscape) throw new InvalidKeyError('glob: a value may not follow a dangling "\\"')
    out += escapeGlob(String(values[i])) + (strings[i + 1] ?? '')
  }
  return out
}

/** Whether the end of a partial pattern is inside an open class or right after a lone backslash. */
function scanGlobState(text: string): { inClass: boolean; danglingEscape: boolean } {
  let inClass = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '\\') {
      if (i === text.length - 1) return { inClass, danglingEscape: true }
      i++
    } else if (!inClass && c === '[') {
      inClass = true
      if (text[i + 1] === '^') i++
    } else if (inClass && c === ']') {
      inClass = false
    }
  }
  return { inClass, danglingEscape: false }
}

/** One element of a parsed glob pattern. */
export type GlobToken =
  | { readonly type: 'literal'; readonly text: string }
  | { readonly type: 'any' }
  | { readonly type: 'one' }
  | {
      readonly type: 'class'
      readonly negate: boolean
      readonly items: readonly (string | readonly [from: string, to: string])[]
    }

/**
 * Parses a glob pattern (Redis syntax: `*` any run, `?` one character, `[abc]`, `[a-z]`, `[^a]`,
 * `\x` literal x; inside a class an escaped character is literal and reversed ranges are
 * swapped). Characters are code points. Rejects unterminated or empty classes and dangling
 * escapes, so that every tier interprets a pattern the same way.
 * @throws {InvalidKeyError}
 */
export function parseGlob(pattern: unknown): readonly GlobToken[] {
  const text = checkText('pattern', pattern, MAX_KEY_LENGTH)
  const chars = Array.from(text)
  const tokens: GlobToken[] = []
  let literal = ''
  const flush = (): void => {
    if (literal) tokens.push({ type: 'literal', text: literal })
    literal = ''
  }
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string
    if (c === '\\') {
      const next = chars[++i]
      if (next === undefined) throw new InvalidKeyError('pattern ends with a dangling "\\"')
      literal += next
    } else if (c === '*') {
      flush()
      if (tokens.at(-1)?.type !== 'any') tokens.push({ type: 'any' })
    } else if (c === '?') {
      flush()
      tokens.push({ type: 'one' })
    } else if (c === '[') {
      flush()
      let j = i + 1
      const negate = chars[j] === '^'
      if (negate) j++
      const items: (string | [string, string])[] = []
      let closed = false
      for (; j < chars.length; j++) {
        const ch = chars[j] as string
        if (ch === ']') {
          closed = true
          break
        }
        if (ch === '\\') {
          // an escaped character is literal and never starts a range (as in Redis)
          const esc = chars[++j]
          if (esc === undefined) break
          items.push(esc)
        } else if (chars[j + 1] === '-' && chars[j + 2] !== undefined && chars[j + 2] !== ']') {
          const to = chars[j + 2] as string
          j += 2
          // Redis accepts reversed ranges as the same range
          items.push((to.codePointAt(0) ?? 0) < (ch.codePointAt(0) ?? 0) ? [to, ch] : [ch, to])
        } else {
          items.push(ch)
        }
      }
      if (!closed) throw new InvalidKeyError('pattern has an unterminated "[" class')
      if (items.length === 0)
        throw new InvalidKeyError('pattern has an empty "[]" class, which matches nothing')
      tokens.push({ type: 'class', negate, items })
      i = j
    } else {
      literal += c
    }
  }
  flush()
  return tokens
}

const REGEXP_META_RE = /[.*+?^${}()|[\]\\/]/g
// `[` too: inside brackets PostgreSQL reads `[.`, `[:` and `[=` as collating elements and classes
const CLASS_META_RE = /[[\]\\^-]/g
const escapeRegExp = (text: string): string => text.replace(REGEXP_META_RE, '\\$&')
const escapeClass = (text: string): string => text.replace(CLASS_META_RE, '\\$&')

/**
 * Source of an anchored regular expression equivalent to `tokens`. The dialect is the common
 * subset of JavaScript (`u` flag) and PostgreSQL ARE, so SQL tiers can use it with `~`.
 */
export function globTokensToRegExpSource(tokens: readonly GlobToken[]): string {
  let out = '^'
  for (const t of tokens) {
    if (t.type === 'literal') out += escapeRegExp(t.text)
    else if (t.type === 'any') out += '.*'
    else if (t.type === 'one') out += '.'
    else {
      out += t.negate ? '[^' : '['
      for (const item of t.items) {
        out +=
          typeof item === 'string'
            ? escapeClass(item)
            : `${escapeClass(item[0])}-${escapeClass(item[1])}`
      }
      out += ']'
    }
  }
  return `${out}$`
}

/**
 * Compiles a glob pattern into a `RegExp` matching whole keys.
 * @throws {InvalidKeyError} on a malformed pattern
 */
export function globToRegExp(pattern: string): RegExp {
  return new RegExp(globTokensToRegExpSource(parseGlob(pattern)), 'su')
}

/** The literal text every match of `tokens` starts with (useful to narrow a scan). */
export function globLiteralPrefix(tokens: readonly GlobToken[]): string {
  const first = tokens[0]
  return first?.type === 'literal' ? first.text : ''
}
