import { describe, expect, it } from 'vitest'
import {
  createMemoryDeadLetters,
  type DeadLetter,
  InvalidKeyError,
  InvalidOptionError,
} from '../src/index.js'

const letter = (namespace: string, key: string): DeadLetter => ({
  namespace,
  key,
  write: {
    namespace,
    key,
    op: 'set',
    value: { hp: 1 },
    version: 3,
    expiresAt: null,
    tags: [],
    enqueuedAt: 1,
  },
  error: 'value too long for type character varying(8)',
  attempts: 2,
  firstSeen: 10,
  lastSeen: 20,
})

describe('memory dead letters', () => {
  it('stores, lists oldest first with filters and limits, and removes by id', async () => {
    const sink = createMemoryDeadLetters()
    await sink.add([letter('a', 'k1'), letter('b', 'k2'), letter('a', 'k3')])
    const all = await sink.list()
    expect(all.map((l) => l.key)).toEqual(['k1', 'k2', 'k3'])
    expect((await sink.list({ namespace: 'a' })).map((l) => l.key)).toEqual(['k1', 'k3'])
    expect((await sink.list({ namespace: 'a', key: 'k3' })).map((l) => l.key)).toEqual(['k3'])
    expect(await sink.list({ limit: 1 })).toHaveLength(1)
    expect(all[0]?.write.version).toBe(3)
    expect(await sink.remove([all[0]?.id as string, 'nope'])).toBe(1)
    expect((await sink.list()).map((l) => l.key)).toEqual(['k2', 'k3'])
  })

  it('rejects bad queries', async () => {
    const sink = createMemoryDeadLetters()
    await expect(sink.list({ key: 'k' })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(sink.list({ limit: 0 })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(sink.list({ namespace: 'bad name' })).rejects.toBeInstanceOf(InvalidKeyError)
  })
})
