import { compression, createCodec, defaultCodec } from '@actor-cache/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeEntry, encodeTail } from '../src/envelope.js'
import { keySlot } from '../src/slot.js'

describe('entry envelope', () => {
  it('round-trips every header on the fast and the general path (property)', () => {
    const packed = createCodec({ transforms: [compression({ threshold: 1 })] })
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.option(fc.integer({ min: 0, max: 4_000_000_000_000 }), { nil: null }),
        fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 3 }),
        fc.boolean(),
        fc.jsonValue(),
        (version, createdAt, expiresAt, tags, bytes, value) => {
          const codec = bytes ? packed : defaultCodec
          let tail: string
          try {
            tail = encodeTail(codec, value, createdAt, expiresAt, tags)
          } catch (error) {
            // generated JSON may hold an own "__proto__" key, which is refused at write time
            expect(error).toMatchObject({ code: 'E_SERIALIZATION' })
            return
          }
          const raw = `AC1 [${version}${tail}`
          const entry = decodeEntry(raw, codec)
          expect({ ...entry, value: 0 }).toEqual({ value: 0, version, createdAt, expiresAt, tags })
          expect(entry.value).toEqual(codec.decode(codec.encode(value)))
        },
      ),
      { numRuns: 500 },
    )
  })

  it('reads a header on the fast path as JSON reads it (property)', () => {
    // Numbers as a header may hold them: digit runs around the 16 digits the fast path reads
    // and around the largest safe integer, and forms only the JSON reading accepts or refuses.
    const digits = fc
      .tuple(
        fc.integer({ min: 1, max: 9 }),
        fc.string({ unit: fc.constantFrom(...'0123456789'), maxLength: 17 }),
      )
      .map(([d, rest]) => `${d}${rest}`)
    const number = fc.oneof(
      digits,
      fc.constantFrom(
        '0',
        '9007199254740991',
        '9007199254740992',
        '99999999999999999',
        '-1',
        '1.5',
        '1e3',
      ),
    )
    fc.assert(
      fc.property(number, number, fc.oneof(number, fc.constant('null')), (v, c, e) => {
        const raw = `AC1 [${v},${c},${e},[],"t"]\n{"a":1}`
        const header = JSON.parse(`[${v},${c},${e}]`) as [number, number, number | null]
        const valid = Number.isSafeInteger(header[0]) && header[0] >= 1 && `${header[0]}` === v
        if (!valid) {
          expect(() => decodeEntry(raw, defaultCodec)).toThrow(
            expect.objectContaining({ code: 'E_DECODE' }),
          )
          return
        }
        expect(decodeEntry(raw, defaultCodec)).toStrictEqual({
          value: { a: 1 },
          version: header[0],
          createdAt: header[1],
          expiresAt: header[2],
          tags: [],
        })
      }),
      { numRuns: 1000 },
    )
  })

  it('refuses what it did not write', () => {
    for (const raw of [
      '',
      'hello',
      'AC1 [1,2,null,[],"t"]',
      'AC1 [x,2,null,[],"t"]\n1',
      'AC1 [1,2,null,[],"q"]\n1',
      'AC1 [1,2]\n1',
      // versions are integers from 1, in digits (as the Lua scripts read them)
      'AC1 [0,2,null,[],"t"]\n1',
      'AC1 [-5,2,null,[],"t"]\n1',
      'AC1 [0,2,null,["tag"],"t"]\n1',
      'AC1 [1.0,2,null,[],"t"]\n1',
      'AC1 [1e3,2,null,[],"t"]\n1',
      'AC1 [9007199254740992,2,null,[],"t"]\n1',
      'AC1 [1,2,nullx,[],"t"]\n1',
      'AC1 [1,,3,[],"t"]\n1',
      'AC1 [',
    ]) {
      expect(() => decodeEntry(raw, defaultCodec)).toThrow(
        expect.objectContaining({ code: 'E_DECODE' }),
      )
    }
  })
})

describe('cluster key slots', () => {
  it('match the Redis reference values and honour hash tags', () => {
    expect(keySlot('123456789')).toBe(12739) // CRC16/XMODEM check value 0x31C3
    expect(keySlot('foo')).toBe(12182)
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'))
    expect(keySlot('foo{}{bar}')).toBe(keySlot('foo{}{bar}'))
    expect(keySlot('{}foo')).not.toBe(keySlot('foo'))
  })
})
