import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  escapeGlob,
  glob,
  globLiteralPrefix,
  globTokensToRegExpSource,
  globToRegExp,
  InvalidKeyError,
  MAX_KEY_LENGTH,
  parseGlob,
  validateKey,
  validateNamespace,
  validateTags,
} from '../src/index.js'

describe('keys', () => {
  it('accepts ordinary keys, including ":" and glob metacharacters', () => {
    for (const key of [
      'actor:123',
      'a',
      'x'.repeat(MAX_KEY_LENGTH),
      'é🐉',
      'a*b?[c]\\d',
      '__proto__',
      ' spaced ',
    ]) {
      expect(validateKey(key)).toBe(key)
    }
  })

  it('rejects malformed keys with InvalidKeyError naming the problem', () => {
    const cases: [unknown, RegExp][] = [
      ['', /empty/],
      ['x'.repeat(MAX_KEY_LENGTH + 1), /limit is 512/],
      ['a\u0000', /control character/],
      ['a\u007f', /control character/],
      ['a\u0085', /control character/],
      ['\ud83d', /lone surrogate/],
      [42, /must be a string, got number/],
      [null, /got null/],
      [{}, /got object/],
    ]
    for (const [key, message] of cases) {
      expect(() => validateKey(key)).toThrow(InvalidKeyError)
      expect(() => validateKey(key)).toThrow(message)
    }
  })

  it('accepts namespaces of letters, digits, _ . - and rejects the rest', () => {
    for (const ns of ['primary_core', 'v2.stats', 'a-b', '9lives'])
      expect(validateNamespace(ns)).toBe(ns)
    for (const ns of ['', 'a:b', 'a b', '_x', 'x'.repeat(65), 'é', 'a*']) {
      expect(() => validateNamespace(ns)).toThrow(InvalidKeyError)
    }
  })

  it('validates and deduplicates tags', () => {
    expect(validateTags(['a', 'b', 'a'])).toEqual(['a', 'b'])
    expect(Object.isFrozen(validateTags(['a']))).toBe(true)
    expect(() => validateTags('a')).toThrow(/array/)
    expect(() => validateTags(Array.from({ length: 33 }, (_, i) => `t${i}`))).toThrow(/at most 32/)
    expect(() => validateTags(['x'.repeat(129)])).toThrow(/limit is 128/)
  })
})

const isValidKey = (text: string): boolean => {
  try {
    validateKey(text)
    return true
  } catch {
    return false
  }
}

describe('glob patterns', () => {
  const matches = (pattern: string, key: string): boolean => globToRegExp(pattern).test(key)

  it('follows Redis glob semantics', () => {
    expect(matches('actor:*', 'actor:1:stats')).toBe(true)
    expect(matches('actor:*', 'actors')).toBe(false)
    expect(matches('a?c', 'abc')).toBe(true)
    expect(matches('a?c', 'ac')).toBe(false)
    expect(matches('a?c', 'a🐉c')).toBe(true)
    expect(matches('h[ae]llo', 'hello')).toBe(true)
    expect(matches('h[^e]llo', 'hello')).toBe(false)
    // Redis has no "!" negation: [!e] is the set {!, e}
    expect(matches('h[!e]llo', 'hallo')).toBe(false)
    expect(matches('h[!e]llo', 'h!llo')).toBe(true)
    // reversed ranges are the same range; an escaped character never starts one
    expect(matches('h[b-a]llo', 'hallo')).toBe(true)
    expect(matches('[\\a-c]', 'b')).toBe(false)
    expect(matches('[\\a-c]', '-')).toBe(true)
    expect(matches('h[a-b]llo', 'hbllo')).toBe(true)
    expect(matches('h[a-b]llo', 'hcllo')).toBe(false)
    expect(matches('a\\*b', 'a*b')).toBe(true)
    expect(matches('a\\*b', 'axb')).toBe(false)
    expect(matches('[-]', '-')).toBe(true)
    expect(matches('a.b(c)+', 'a.b(c)+')).toBe(true)
    expect(matches('a.b', 'axb')).toBe(false)
  })

  it('rejects malformed patterns', () => {
    for (const p of ['', 'a[', 'a[b', 'a\\', '[]', '[^]', 'a\u0000*']) {
      expect(() => parseGlob(p)).toThrow(InvalidKeyError)
    }
  })

  it('escapes user text so it can never widen a pattern (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.string({ maxLength: 20 }),
        (text, other) => {
          fc.pre(isValidKey(text))
          const re = globToRegExp(escapeGlob(text))
          expect(re.test(text)).toBe(true)
          if (other !== text) expect(re.test(other)).toBe(false)
          const scoped = globToRegExp(glob`actor:${text}:*`)
          expect(scoped.test(`actor:${text}:hp`)).toBe(true)
          if (!`actor:${other}:hp`.startsWith(`actor:${text}:`))
            expect(scoped.test(`actor:${other}:hp`)).toBe(false)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('produces regular expressions that compile with the u flag for any valid pattern', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom('a', 'b', '*', '?', '[', ']', '-', '^', '\\', '.', '('),
          maxLength: 12,
        }),
        (p) => {
          let tokens: ReturnType<typeof parseGlob>
          try {
            tokens = parseGlob(p)
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidKeyError)
            return
          }
          expect(() => new RegExp(globTokensToRegExpSource(tokens), 'u')).not.toThrow()
        },
      ),
      { numRuns: 3000 },
    )
  })

  it('refuses interpolations the escaping cannot protect', () => {
    const user = 'a-z'
    expect(() => glob`item:[${user}]`).toThrow(/inside a "\[...\]" class/)
    expect(() => glob`dir\\${'*'}`).toThrow(/dangling/)
    expect(glob`dir\\\\${'*'}`).toBe('dir\\\\\\*')
    expect(globToRegExp(glob`a${'^!-'}b`).test('a^!-b')).toBe(true)
    expect(globToRegExp(glob`[ab]${'x'}`).test('ax')).toBe(true)
  })

  it('reports the literal prefix of a pattern', () => {
    expect(globLiteralPrefix(parseGlob('actor:12*'))).toBe('actor:12')
    expect(globLiteralPrefix(parseGlob('*x'))).toBe('')
    expect(globLiteralPrefix(parseGlob('a\\*b*'))).toBe('a*b')
  })
})
