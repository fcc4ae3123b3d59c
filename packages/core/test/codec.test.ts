import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  compression,
  createCodec,
  DecodeError,
  defaultCodec,
  freezeValue,
  jsonSerializer,
  MAX_VALUE_DEPTH,
  measureValue,
  SerializationError,
} from '../src/index.js'

/** Values of the supported model: what game state is made of. */
const leaf = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date(),
)
const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object'), tie('map'), tie('set')),
  array: fc.array(tie('node'), { maxLength: 5 }),
  object: fc.dictionary(
    fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.constantFrom('$t', '$$t', 'constructor', 'prototype', 'v'),
    ),
    tie('node'),
    { maxKeys: 5, noNullPrototype: true },
  ),
  map: fc.array(fc.tuple(tie('node'), tie('node')), { maxLength: 3 }).map((e) => new Map(e)),
  set: fc.array(tie('node'), { maxLength: 3 }).map((e) => new Set(e)),
})).node

describe('jsonSerializer', () => {
  it('round-trips every value of the model exactly (property)', () => {
    fc.assert(
      fc.property(value, (v) => {
        let text: string
        try {
          text = jsonSerializer.serialize(v)
        } catch (error) {
          // the only model values refused: "constructor.prototype" paths and own "__proto__" keys
          expect(error).toBeInstanceOf(SerializationError)
          expect((error as Error).message).toMatch(/constructor\.prototype|__proto__/)
          return
        }
        expect(jsonSerializer.deserialize(text)).toEqual(v)
      }),
      { numRuns: 3000 },
    )
  })

  it('stores plain JSON data as plain JSON', () => {
    const v = { hp: 10, name: 'Ayla', stats: [1, 2.5, null], nested: { ok: true } }
    expect(jsonSerializer.serialize(v)).toBe(JSON.stringify(v))
  })

  it('keeps -0, NaN, Infinity, undefined, bigint, Date, Map and Set with their types', () => {
    const v = [
      -0,
      Number.NaN,
      -Infinity,
      undefined,
      10n ** 30n,
      new Date(0),
      new Date(Number.NaN),
      new Map([[1, { a: undefined }]]),
      new Set(['x']),
    ]
    const back = jsonSerializer.deserialize(jsonSerializer.serialize(v)) as unknown[]
    expect(Object.is(back[0], -0)).toBe(true)
    expect(back[1]).toBeNaN()
    expect(back[2]).toBe(-Infinity)
    expect(back).toHaveLength(9)
    expect(3 in back).toBe(true)
    expect(back[4]).toBe(10n ** 30n)
    expect(back[5]).toEqual(new Date(0))
    expect((back[6] as Date).getTime()).toBeNaN()
    expect(back[7]).toEqual(new Map([[1, { a: undefined }]]))
    expect(Object.hasOwn((back[7] as Map<number, object>).get(1) as object, 'a')).toBe(true)
    expect(back[8]).toEqual(new Set(['x']))
  })

  it('rejects what it cannot round-trip, at encode time', () => {
    const cyclic: unknown[] = []
    cyclic.push(cyclic)
    const viaMap = new Map<string, unknown>()
    viaMap.set('self', viaMap)
    const withSymbolKey = { [Symbol('s')]: 1 }
    const protoKey = JSON.parse('{"__proto__": {"x": 1}}')
    class Hero {}
    for (const bad of [
      () => 0,
      Symbol('x'),
      cyclic,
      viaMap,
      new Hero(),
      Buffer.from('x'),
      new Uint8Array(2),
      withSymbolKey,
      protoKey,
      /re/,
      new WeakMap(),
      Promise.resolve(1),
    ]) {
      expect(() => jsonSerializer.serialize(bad)).toThrow(SerializationError)
    }
    expect(() => jsonSerializer.serialize(undefined)).not.toThrow()
  })

  it('refuses hostile or corrupt stored text with DecodeError, without pollution', () => {
    const hostile = [
      '{"__proto__": {"polluted": true}}',
      '{"a": {"__proto__": {"polluted": true}}}',
      '{"\\u005f_proto__": {"polluted": true}}',
      '[{"constructor": {"prototype": {"polluted": true}}}]',
      '{"$t": "bigint", "v": "12x"}',
      '{"$t": "nope"}',
      '{"$t": "map", "v": [1]}',
      '{"$t": "date", "v": "not a date"}',
      'not json',
      '{"a": 1',
      '',
    ]
    for (const text of hostile) {
      expect(() => jsonSerializer.deserialize(text), text).toThrow(DecodeError)
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(() => jsonSerializer.deserialize(42 as unknown as string)).toThrow(DecodeError)
  })

  it('leaves legitimate "constructor" keys alone and refuses constructor.prototype paths', () => {
    const v = { constructor: 'Ada', prototype: 1, list: { constructor: [{ prototype: 2 }] } }
    expect(jsonSerializer.deserialize(jsonSerializer.serialize(v))).toEqual(v)
    expect(freezeValue(v).value).toEqual(v)
    const path = { a: { constructor: { prototype: { polluted: true } } } }
    expect(() => jsonSerializer.serialize(path)).toThrow(SerializationError)
    expect(() => freezeValue(path)).toThrow(SerializationError)
  })
})

describe('codec pipeline', () => {
  it('is text without transforms and bytes with them', () => {
    const plain = createCodec()
    expect(plain.encode({ a: 1 })).toBe('{"a":1}')
    expect(plain.decode(new TextEncoder().encode('{"a":1}'))).toEqual({ a: 1 })
    const packed = createCodec({ transforms: [compression({ threshold: 64 })] })
    expect(packed.name).toBe('json+deflate')
    const big = { text: 'x'.repeat(10_000) }
    const bytes = packed.encode(big) as Uint8Array
    expect(bytes).toBeInstanceOf(Uint8Array)
    expect(bytes.byteLength).toBeLessThan(500)
    expect(packed.decode(bytes)).toEqual(big)
    const small = packed.encode({ a: 1 }) as Uint8Array
    expect(small[0]).toBe(0)
    expect(packed.decode(small)).toEqual({ a: 1 })
  })

  it('turns corrupt bytes into DecodeError', () => {
    const packed = createCodec({ transforms: [compression({ threshold: 1 })] })
    const bytes = packed.encode({ text: 'hello hello hello' }) as Uint8Array
    const flipped = bytes.slice()
    flipped[5] = (flipped[5] as number) ^ 0xff
    expect(() => packed.decode(flipped)).toThrow(DecodeError)
    expect(() => packed.decode(Uint8Array.of(7, 1, 2))).toThrow(/compression header/)
    expect(() => packed.decode('text')).toThrow(DecodeError)
    expect(() => createCodec().decode(Uint8Array.of(0xff, 0xfe))).toThrow(DecodeError)
  })

  it('validates transform options', () => {
    expect(() => compression({ threshold: -1 })).toThrow(/threshold/)
    expect(() => compression({ level: 12 })).toThrow(/level/)
  })
})

describe('freezeValue', () => {
  it('accepts exactly what the serializer accepts and yields the same value (property)', () => {
    fc.assert(
      fc.property(value, (v) => {
        let text: string
        try {
          text = jsonSerializer.serialize(v)
        } catch (error) {
          expect(error).toBeInstanceOf(SerializationError)
          expect(() => freezeValue(v)).toThrow(SerializationError)
          expect(() => measureValue(v)).toThrow(SerializationError)
          return
        }
        const { value: frozen, size } = freezeValue(v)
        expect(frozen).toEqual(jsonSerializer.deserialize(text))
        expect(size).toBe(measureValue(v))
        expect(size).toBeGreaterThanOrEqual(0)
      }),
      { numRuns: 2000 },
    )
  })

  it('makes every level read-only, Map, Set and Date included', () => {
    const { value: v } = freezeValue({
      list: [{ hp: 1 }],
      map: new Map([['a', 1]]),
      set: new Set([1]),
      when: new Date(0),
    })
    expect(Object.isFrozen(v) && Object.isFrozen(v.list) && Object.isFrozen(v.list[0])).toBe(true)
    expect(() => {
      ;(v.list[0] as { hp: number }).hp = 2
    }).toThrow(TypeError)
    expect(() => v.map.set('b', 2)).toThrow(/read-only/)
    expect(() => v.map.delete('a')).toThrow(/read-only/)
    expect(() => v.set.add(2)).toThrow(/read-only/)
    expect(() => v.when.setFullYear(2000)).toThrow(/read-only/)
    expect(v.map).toBeInstanceOf(Map)
    expect(v.map.constructor).toBe(Map)
    expect(v.map.get('a')).toBe(1)
    expect(v.when.getTime()).toBe(0)
  })

  it('rejects the same values as the serializer', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.me = { back: cyclic }
    class Hero {}
    for (const bad of [
      cyclic,
      new Hero(),
      [() => 1],
      { s: Symbol('x') },
      JSON.parse('{"__proto__": 1}'),
    ]) {
      expect(() => freezeValue(bad)).toThrow(SerializationError)
      expect(() => jsonSerializer.serialize(bad)).toThrow(SerializationError)
    }
  })

  it('copies shared references instead of rejecting them', () => {
    const shared = { hp: 1 }
    const { value: v } = freezeValue({ a: shared, b: shared })
    expect(v).toEqual({ a: { hp: 1 }, b: { hp: 1 } })
  })

  it('estimates size roughly by content', () => {
    expect(measureValue('x'.repeat(1000))).toBeGreaterThan(1000)
    expect(measureValue({ a: 'x'.repeat(1000), b: 'y'.repeat(1000) })).toBeGreaterThan(2000)
    expect(measureValue(1)).toBe(0)
  })
})

describe('decompression bombs', () => {
  it('stop at maxOutputLength with DecodeError', () => {
    const packed = createCodec({
      transforms: [compression({ threshold: 1, maxOutputLength: 1024 * 1024 })],
    })
    const bomb = packed.encode('x'.repeat(4 * 1024 * 1024)) as Uint8Array
    expect(bomb.byteLength).toBeLessThan(20_000)
    expect(() => packed.decode(bomb)).toThrow(/inflates beyond 1048576 bytes/)
  })
})

describe('nesting depth', () => {
  const nest = (times: number, wrap: (inner: unknown) => unknown, leaf: unknown): unknown => {
    let v = leaf
    for (let i = 0; i < times; i++) v = wrap(v)
    return v
  }
  const arr = (v: unknown) => [v]
  const obj = (v: unknown) => ({ a: v })
  const map = (v: unknown) => new Map([['k', v]])
  const set = (v: unknown) => new Set([v])
  // [label, deepest accepted value (stored form exactly MAX_VALUE_DEPTH deep), one level more]
  const cases: [string, unknown, unknown][] = [
    ['arrays', nest(1000, arr, 1), nest(1001, arr, 1)],
    ['objects', nest(1000, obj, 'x'), nest(1001, obj, 'x')],
    ['a bigint (tagged: one level)', nest(999, arr, 7n), nest(1000, arr, 7n)],
    ['undefined (tagged: one level)', nest(999, obj, undefined), nest(1000, obj, undefined)],
    ['a Date (one level)', nest(999, arr, new Date(0)), nest(1000, arr, new Date(0))],
    ['Maps (three levels each)', [nest(333, map, 1)], nest(334, map, 1)],
    ['Sets (two levels each)', nest(500, set, 1), nest(500, set, [1])],
    ['an empty Map (two levels)', nest(998, arr, new Map()), nest(999, arr, new Map())],
  ]

  it('is one limit: the serializer on write and on read, and freezeValue, agree', () => {
    expect(MAX_VALUE_DEPTH).toBe(1000)
    const refused = { message: expect.stringMatching(/deeper than 1000 levels/) }
    for (const [label, deepest, tooDeep] of cases) {
      const text = jsonSerializer.serialize(deepest)
      expect(jsonSerializer.deserialize(text), label).toEqual(deepest)
      expect(freezeValue(deepest).value, label).toEqual(deepest)
      expect(measureValue(deepest), label).toBeGreaterThan(0)

      expect(() => jsonSerializer.serialize(tooDeep), label).toThrow(
        expect.objectContaining({ code: 'E_SERIALIZATION', ...refused }),
      )
      expect(() => freezeValue(tooDeep), label).toThrow(
        expect.objectContaining({ code: 'E_SERIALIZATION', ...refused }),
      )
      expect(() => measureValue(tooDeep), label).toThrow(SerializationError)
      // one level more, planted as text by a writer that skipped the check
      expect(() => jsonSerializer.deserialize(`[${text}]`), label).toThrow(
        expect.objectContaining({ code: 'E_DECODE', ...refused }),
      )
    }
    const inner = jsonSerializer.serialize(nest(333, map, 1))
    expect(() => jsonSerializer.deserialize(`{"$t":"map","v":[["k",${inner}]]}`)).toThrow(
      DecodeError,
    )
  })

  it('refuses a 200,000-deep value on read, with or without the reviver, through any codec', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000)
    const revived = `${'['.repeat(200_000)}{"$t":"undef"}${']'.repeat(200_000)}`
    for (const text of [deep, revived, `{"a":${deep}}`]) {
      expect(() => jsonSerializer.deserialize(text)).toThrow(DecodeError)
    }
    const packed = createCodec({ transforms: [compression({ threshold: 1 })] })
    const bytes = new Uint8Array(Buffer.from(deep))
    expect(() => packed.decode(compression({ threshold: 1 }).encode(bytes))).toThrow(DecodeError)
    expect(() => defaultCodec.decode(bytes)).toThrow(DecodeError)
    // writing it is refused
    expect(() => jsonSerializer.serialize(JSON.parse(deep))).toThrow(SerializationError)
    expect(() => freezeValue(JSON.parse(deep))).toThrow(SerializationError)
  })

  it('says where a value is nested too deeply, at the path freezeValue names', () => {
    const caught = (fn: () => unknown): SerializationError => {
      try {
        fn()
      } catch (error) {
        if (error instanceof SerializationError) return error
        throw error
      }
      throw new Error('expected a SerializationError')
    }
    for (const [label, , tooDeep] of cases) {
      const fromSerializer = caught(() => jsonSerializer.serialize(tooDeep))
      const fromFreeze = caught(() => freezeValue(tooDeep))
      expect(fromSerializer.path, label).toMatch(/^\$/)
      expect(fromSerializer.path, label).toBe(fromFreeze.path)
      expect(fromSerializer.message, label).toContain(`(at ${fromSerializer.path})`)
    }
    // one object level, then 1000 arrays: the innermost array is one level too many
    const value = { ok: [1], stats: [new Date(0), nest(999, arr, 1)] }
    const error = caught(() => jsonSerializer.serialize(value))
    expect(error.path).toBe(`$.stats[1]${'[0]'.repeat(998)}`)
    expect(error.message).toBe(
      `cannot store a value nested deeper than 1000 levels (at $.stats[1]${'[0]'.repeat(998)})`,
    )
    expect(error.path).toBe(caught(() => freezeValue(value)).path)
    // inside a Map: key and value of each entry are named
    const inMap = new Map([
      ['a', 1],
      ['b', nest(333, map, 1)],
    ] as [string, unknown][])
    expect(caught(() => jsonSerializer.serialize(inMap)).path).toMatch(/^\$\.<value 1>\.<value 0>/)
  })

  it('still tells a cycle from depth', () => {
    const cyclic: unknown[] = []
    cyclic.push(cyclic)
    expect(() => jsonSerializer.serialize(cyclic)).toThrow(/cycle/)
    expect(() => jsonSerializer.serialize(nest(1001, arr, 1))).toThrow(/deeper than 1000/)
  })
})
