import { isDeepStrictEqual } from 'node:util'
import { freezeValue, MAX_VALUE_DEPTH, measureValue } from '@actor-cache/core'
import { describe, expect, it } from 'vitest'
import { freezeCopy, measure } from '../src/value-copy.js'
import { forEachSeed } from './seeded.js'

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

describe('freezeCopy and measure', () => {
  it('equal core freezeValue and measureValue on random values', () => {
    forEachSeed(300, (rand) => {
      const value = randomValue(rand)
      const fast = freezeCopy(value)
      const core = freezeValue(value)
      expect(fast.size).toBe(core.size)
      expect(fast.value).toStrictEqual(core.value)
      expect(deepFrozen(fast.value)).toBe(true)
      expect(measure(value)).toBe(measureValue(value))
    })
  })

  it('copy: the stored value shares nothing mutable with the caller', () => {
    const input = { id: 'a', stats: [1, 2], nested: { x: 1 } }
    const { value } = freezeCopy(input)
    expect(value).not.toBe(input)
    expect(value.stats).not.toBe(input.stats)
    input.stats.push(3)
    expect(value.stats).toEqual([1, 2])
    expect(() => {
      ;(value.nested as { x: number }).x = 2
    }).toThrow(TypeError)
  })

  it('refuse what core refuses, with the same error', () => {
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
      { constructor: { prototype: {} } },
      new Uint8Array(2),
      Object.assign(Object.create({ inherited: 1 }), { own: 1 }),
    ]
    for (const value of hostile) {
      expect(outcome(() => freezeCopy(value))).toEqual(outcome(() => freezeValue(value)))
      expect(outcome(() => measure(value))).toEqual(outcome(() => measureValue(value)))
    }
    expect(outcome(() => freezeCopy(cyclic))).toMatchObject({ code: 'E_SERIALIZATION' })
  })

  it('accept what core accepts at the edges: nesting to the limit, constructor keys, null prototypes', () => {
    let deep: unknown = 1
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) deep = [deep]
    const odd = [deep, { constructor: 'x' }, { constructor: { name: 'y' } }, Object.create(null)]
    for (const value of odd) {
      // node's comparison: vitest's gives up on a thousand levels
      expect(isDeepStrictEqual(freezeCopy(value), freezeValue(value))).toBe(true)
      expect(measure(value)).toBe(measureValue(value))
    }
  })

  it('ignore enumerable properties added to Object.prototype, as core does', () => {
    const proto = Object.prototype as Record<string, unknown>
    proto.injected = 1
    try {
      const value = { a: { b: 1 } }
      expect(freezeCopy(value)).toStrictEqual(freezeValue(value))
      expect(Object.keys(freezeCopy(value).value)).toEqual(['a'])
      expect(measure(value)).toBe(measureValue(value))
    } finally {
      delete proto.injected
    }
  })
})

describe('freezeCopy of arrays', () => {
  it('equals core on holes, subclasses and arrays whose iteration is not the built-in one', () => {
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
      const fast = freezeCopy(value)
      expect(fast).toStrictEqual(freezeValue(value))
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
      expect(freezeCopy(value)).toStrictEqual(freezeValue(value))
      expect(freezeCopy(value).value).toEqual([1, 'two', [3]])
    } finally {
      iteratorProto.next = next
    }
  })

  it('copies an array that shares a literal’s elements, and later writes to it do not reach the copy', () => {
    const make = () => [1, 2, 3]
    const input = make()
    const { value } = freezeCopy(input)
    input[0] = 9
    input.push(4)
    expect(value).toEqual([1, 2, 3])
    expect(make()).toEqual([1, 2, 3])
    expect(() => (value as number[]).push(5)).toThrow(TypeError)
  })
})
