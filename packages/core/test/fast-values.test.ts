import { isDeepStrictEqual } from 'node:util'
import { forEachSeed } from '@actor-cache/test-utils/seeded'
import { describe, expect, it } from 'vitest'
import { MAX_VALUE_DEPTH } from '../src/depth.js'
import { freezeValue, measureValue } from '../src/fast-values.js'
import { freezeValueFully, measureValueFully } from '../src/values.js'

/** A random value of the shapes writes carry, now and then with a part the fast walk leaves to core. */
function randomValue(rand: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const r = rand()
  if (depth > 4 || r < 0.45) {
    return pick([
      () => Math.floor(rand() * 1000),
      () => rand() * 1e12,
      () => -(2 ** 31),
      () => 2 ** 30,
      () => -0,
      () => Number.NaN,
      () => Infinity,
      () => 'x'.repeat(Math.floor(rand() * 40)),
      () => '',
      () => true,
      () => null,
      () => undefined,
      () => 10n ** BigInt(Math.floor(rand() * 40)),
      () => new Date(Math.floor(rand() * 1e12)),
    ])()
  }
  if (r < 0.7)
    return Array.from({ length: Math.floor(rand() * 5) }, () => randomValue(rand, depth + 1))
  if (r < 0.95) {
    const obj: Record<string, unknown> = rand() < 0.1 ? Object.create(null) : {}
    const n = Math.floor(rand() * 5)
    for (let i = 0; i < n; i++)
      obj[pick(['id', 'hp', 'a', 'b', '0', '12', 'x y'])] = randomValue(rand, depth + 1)
    return obj
  }
  return rand() < 0.5
    ? new Map([[randomValue(rand, depth + 1), randomValue(rand, depth + 1)]])
    : new Set([randomValue(rand, depth + 1)])
}

function deepFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true
  if (!Object.isFrozen(value)) return false
  if (value instanceof Map) return [...value].every(([k, v]) => deepFrozen(k) && deepFrozen(v))
  if (value instanceof Set) return [...value].every(deepFrozen)
  return Object.values(value).every(deepFrozen)
}

const outcome = (f: () => unknown): unknown => {
  try {
    return { ok: f() }
  } catch (err) {
    return { error: (err as Error).message, code: (err as { code?: string }).code }
  }
}

describe('freezeValue and measureValue (the fast walk)', () => {
  it('equal the full walk on random values', () => {
    forEachSeed(300, (rand) => {
      const value = randomValue(rand)
      const fast = freezeValue(value)
      const core = freezeValueFully(value)
      expect(fast.size).toBe(core.size)
      expect(fast.value).toStrictEqual(core.value)
      expect(deepFrozen(fast.value)).toBe(true)
      expect(measureValue(value)).toBe(measureValueFully(value))
    })
  })

  it('copy: the stored value shares nothing mutable with the caller', () => {
    const input = { id: 'a', stats: [1, 2], nested: { x: 1 } }
    const { value } = freezeValue(input)
    expect(value).not.toBe(input)
    expect(value.stats).not.toBe(input.stats)
    input.stats.push(3)
    expect(value.stats).toEqual([1, 2])
    expect(() => {
      ;(value.nested as { x: number }).x = 2
    }).toThrow(TypeError)
  })

  it('refuse what the full walk refuses, with the same error', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    let deep: unknown = 1
    for (let i = 0; i < MAX_VALUE_DEPTH + 1; i++) deep = [deep]
    const hostile: unknown[] = [
      cyclic,
      deep,
      { f: () => 1 },
      { [Symbol('s')]: 1 },
      Symbol('s'),
      new (class Point {
        x = 1
      })(),
      JSON.parse('{"__proto__": {"polluted": true}}'),
      JSON.parse('{"a": 1, "__proto__": 2}'),
      JSON.parse('{"__proto__": null}'),
      Object.defineProperty({ a: 1 }, Symbol('hidden'), { value: 1, enumerable: false }),
      { constructor: { prototype: {} } },
      new Uint8Array(2),
      Object.assign(Object.create({ inherited: 1 }), { own: 1 }),
    ]
    // the held copy a write would share parts of: same keys as some of the values
    const held = freezeValueFully({ a: 1, f: 1, self: { a: 1 }, own: 1 }).value
    for (const value of hostile) {
      expect(outcome(() => freezeValue(value))).toEqual(outcome(() => freezeValueFully(value)))
      expect(outcome(() => freezeValue(value, held))).toEqual(
        outcome(() => freezeValueFully(value)),
      )
      expect(outcome(() => measureValue(value))).toEqual(outcome(() => measureValueFully(value)))
    }
    expect(outcome(() => freezeValue(cyclic))).toMatchObject({ code: 'E_SERIALIZATION' })
  })

  it('accept what the full walk accepts at the edges: nesting to the limit, constructor keys, null prototypes', () => {
    let deep: unknown = 1
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) deep = [deep]
    const odd = [deep, { constructor: 'x' }, { constructor: { name: 'y' } }, Object.create(null)]
    for (const value of odd) {
      // node's comparison: vitest's gives up on a thousand levels
      expect(isDeepStrictEqual(freezeValue(value), freezeValueFully(value))).toBe(true)
      expect(measureValue(value)).toBe(measureValueFully(value))
    }
  })

  it('ignore enumerable properties added to Object.prototype, as the full walk does', () => {
    const proto = Object.prototype as Record<string, unknown>
    proto.injected = 1
    try {
      const value = { a: { b: 1 } }
      expect(freezeValue(value)).toStrictEqual(freezeValueFully(value))
      expect(Object.keys(freezeValue(value).value)).toEqual(['a'])
      expect(measureValue(value)).toBe(measureValueFully(value))
    } finally {
      delete proto.injected
    }
  })
})

describe('freezeValue of arrays', () => {
  it('equals the full walk on holes, subclasses and arrays whose iteration is not the built-in one', () => {
    class Row extends Array<unknown> {}
    const row = Row.from([1, { a: 2 }])
    const ownIterator = [1, 2, 3]
    Object.defineProperty(ownIterator, Symbol.iterator, {
      value: function* () {
        yield 'not an index read'
      },
    })
    // biome-ignore lint/suspicious/noSparseArray: the hole is the case under test
    const values: unknown[] = [[1, , 3], new Array(3), row, ownIterator, [[1, [2, [3]]], { a: [] }]]
    for (const value of values) {
      const fast = freezeValue(value)
      expect(fast).toStrictEqual(freezeValueFully(value))
      expect(Object.getPrototypeOf(fast.value)).toBe(Array.prototype)
      expect(deepFrozen(fast.value)).toBe(true)
    }
  })

  it('reads by index while the array iterator is patched', () => {
    const iteratorProto = Object.getPrototypeOf([][Symbol.iterator]()) as { next: () => unknown }
    const next = iteratorProto.next
    iteratorProto.next = () => ({ done: true, value: undefined })
    try {
      const value = [1, 'two', [3]]
      expect(freezeValue(value)).toStrictEqual(freezeValueFully(value))
      expect(freezeValue(value).value).toEqual([1, 'two', [3]])
    } finally {
      iteratorProto.next = next
    }
  })

  it('copies an array that shares a literal’s elements, and later writes to it do not reach the copy', () => {
    const make = () => [1, 2, 3]
    const input = make()
    const { value } = freezeValue(input)
    input[0] = 9
    input.push(4)
    expect(value).toEqual([1, 2, 3])
    expect(make()).toEqual([1, 2, 3])
    expect(() => (value as number[]).push(5)).toThrow(TypeError)
  })
})

/** `value` with random edits: parts replaced, keys added, dropped or reordered, arrays resized. */
function edited(rand: () => number, value: unknown, depth = 0): unknown {
  if (rand() < 0.15) return randomValue(rand, depth)
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    const out = value.map((v) => (rand() < 0.5 ? v : edited(rand, v, depth + 1)))
    if (rand() < 0.2) out.push(randomValue(rand, depth + 1))
    if (rand() < 0.2) out.pop()
    return out
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return value
  let entries = Object.entries(value).map(([k, v]) => [k, rand() < 0.5 ? v : edited(rand, v)])
  if (rand() < 0.2) entries.reverse()
  if (rand() < 0.2) entries = entries.slice(1)
  if (rand() < 0.2) entries.push([`k${Math.floor(rand() * 3)}`, randomValue(rand, depth + 1)])
  return Object.fromEntries(entries)
}

/** Deep equality that also compares key order, and numbers with `Object.is` (-0 is not 0). */
function same(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return Object.is(a, b)
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  if (a instanceof Map || a instanceof Set || a instanceof Date) return isDeepStrictEqual(a, b)
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return (
    ka.length === kb.length &&
    ka.every(
      (k, i) =>
        k === kb[i] && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  )
}

describe('freezeValue over an earlier frozen copy', () => {
  it('equals a copy made from nothing, in every key and key order, on random edits', () => {
    forEachSeed(300, (rand) => {
      const before = randomValue(rand)
      const after = edited(rand, before)
      const previous = freezeValue(before).value
      const over = freezeValue(after, previous)
      const core = freezeValueFully(after)
      expect(over.size).toBe(core.size)
      expect(same(over.value, core.value)).toBe(true)
      expect(deepFrozen(over.value)).toBe(true)
      // the previous copy is untouched
      expect(same(previous, freezeValueFully(before).value)).toBe(true)
    })
  })

  it('keeps the unchanged parts of the held copy and makes new objects only on the changed path', () => {
    const state = { id: 'a', hp: 10, bag: { items: [{ sword: 1 }, { shield: 2 }] }, stats: [1, 2] }
    const held = freezeValue(state).value
    const next = freezeValue(
      { ...state, hp: 9, bag: { items: [{ sword: 1 }, { shield: 3 }] } },
      held,
    ).value
    expect(next).not.toBe(held)
    expect(next.stats).toBe(held.stats)
    expect(next.bag).not.toBe(held.bag)
    expect(next.bag.items[0]).toBe(held.bag.items[0])
    expect(next.bag.items[1]).toEqual({ shield: 3 })
    expect(held.hp).toBe(10)
    // the same value again: the held copy itself
    expect(freezeValue(structuredClone(state), held).value).toBe(held)
    // keys in another order, or one fewer: a new object, in the new order
    const reordered = freezeValue({ hp: 10, id: 'a', bag: state.bag, stats: [1, 2] }, held).value
    expect(Object.keys(reordered)).toEqual(['hp', 'id', 'bag', 'stats'])
    expect(reordered.stats).toBe(held.stats)
    expect(Object.keys(freezeValue({ id: 'a', hp: 10 }, held).value)).toEqual(['id', 'hp'])
    // -0 is not 0, an undefined field is not a missing one
    expect(Object.is(freezeValue({ x: -0 }, freezeValue({ x: 0 }).value).value.x, -0)).toBe(true)
    expect(
      Object.keys(freezeValue({ y: undefined }, freezeValue({ x: undefined }).value).value),
    ).toEqual(['y'])
  })

  it('takes nothing from a previous value that is not frozen', () => {
    const held = { stats: [1, 2] }
    const next = freezeValue({ stats: [1, 2] }, held).value
    expect(next.stats).not.toBe(held.stats)
    expect(Object.isFrozen(next.stats)).toBe(true)
  })
})
