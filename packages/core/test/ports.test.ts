import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ConflictError,
  createLocalBusHub,
  createLocalLockProvider,
  createMemoryChangeLog,
  createMemoryWriteQueue,
  type DeliveredInvalidation,
  InvalidKeyError,
  QueueFullError,
  SequenceTracker,
  validateInvalidationMessage,
} from '../src/index.js'
import { runChangeLogConformance } from '../src/testing/index.js'

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

/** TTLs and waits far longer than any test: what must not expire cannot, however slow the run. */
const NEVER = 600_000

afterEach(() => {
  vi.useRealTimers()
})

describe('invalidation bus (in-process)', () => {
  it('delivers to other instances in order, never back to the sender', async () => {
    const hub = createLocalBusHub()
    const a = hub.connect('a')
    const b = hub.connect('b')
    const gotA: DeliveredInvalidation[] = []
    const gotB: DeliveredInvalidation[] = []
    a.subscribe({ onInvalidate: (m) => gotA.push(m), onReset: () => {} })
    b.subscribe({ onInvalidate: (m) => gotB.push(m), onReset: () => {} })
    await a.publish({ namespace: 'primary_core', keys: ['actor:1'] })
    await a.publish({ tags: ['guild:7'] })
    await tick()
    expect(gotA).toEqual([])
    expect(gotB.map((m) => [m.senderId, m.seq, m.keys ?? m.tags])).toEqual([
      ['a', 1, ['actor:1']],
      ['a', 2, ['guild:7']],
    ])
    await b.close()
    await a.publish({ namespace: 'x', all: true })
    await tick()
    expect(gotB).toHaveLength(2)
  })

  it('validates messages before sending', async () => {
    const bus = createLocalBusHub().connect()
    await expect(bus.publish({ namespace: 'x' })).rejects.toThrow(
      /needs all, keys, patterns or tags/,
    )
    await expect(bus.publish({ keys: ['a'] })).rejects.toThrow(/needs a namespace/)
    await expect(bus.publish({ namespace: 'x', keys: [''] })).rejects.toBeInstanceOf(
      InvalidKeyError,
    )
    await expect(bus.publish({ namespace: 'x', patterns: ['a['] })).rejects.toBeInstanceOf(
      InvalidKeyError,
    )
    await expect(bus.publish({ namespace: 'bad ns', all: true })).rejects.toBeInstanceOf(
      InvalidKeyError,
    )
    expect(validateInvalidationMessage({ namespace: 'x', keys: [], tags: ['t'] })).toEqual({
      namespace: 'x',
      tags: ['t'],
    })
  })

  it('passes resets to listeners', () => {
    const hub = createLocalBusHub()
    const bus = hub.connect('a')
    const reasons: string[] = []
    bus.subscribe({ onInvalidate: () => {}, onReset: (r) => reasons.push(r) })
    hub.simulateReset('a', 'reconnected')
    expect(reasons).toEqual(['reconnected'])
    expect(() => hub.connect('a')).toThrow(/already connected/)
  })

  it('detects gaps and duplicates per sender', () => {
    const t = new SequenceTracker(2)
    expect(t.observe('a', 5)).toBe('next')
    expect(t.observe('a', 6)).toBe('next')
    expect(t.observe('a', 6)).toBe('duplicate')
    expect(t.observe('a', 9)).toBe('gap')
    expect(t.observe('b', 1)).toBe('next')
    expect(t.observe('c', 1)).toBe('next')
    // 'a' was the least recent of three senders with room for two: forgotten, starts afresh
    expect(t.observe('a', 50)).toBe('next')
  })
})

describe('write queue (in-process)', () => {
  const write = (key: string, version = 1) => ({
    namespace: 'ns',
    key,
    op: 'set' as const,
    value: key,
    version,
    expiresAt: null,
    tags: [],
    enqueuedAt: 0,
  })

  it('hands items out once, keeps them until acked, and re-delivers released ones', async () => {
    const q = createMemoryWriteQueue({ capacity: 10 })
    await q.enqueue([write('a'), write('b'), write('c')])
    const first = await q.claim(2)
    expect(first.map((d) => [d.item.key, d.attempts])).toEqual([
      ['a', 1],
      ['b', 1],
    ])
    expect(await q.stats()).toEqual({ ready: 1, inFlight: 2, capacity: 10 })
    await q.ack([first[0]!.id])
    await q.release([first[1]!.id])
    const second = await q.claim(5)
    expect(second.map((d) => [d.item.key, d.attempts])).toEqual([
      ['c', 1],
      ['b', 2],
    ])
    await q.ack(second.map((d) => d.id))
    expect(await q.stats()).toEqual({ ready: 0, inFlight: 0, capacity: 10 })
  })

  it('rejects a batch that does not fit with QueueFullError, adding nothing', async () => {
    const q = createMemoryWriteQueue({ capacity: 3 })
    await q.enqueue([write('a'), write('b')])
    await expect(q.enqueue([write('c'), write('d')])).rejects.toBeInstanceOf(QueueFullError)
    expect((await q.stats()).ready).toBe(2)
    const claimed = await q.claim(2)
    // in-flight items still count against capacity until acked
    await expect(q.enqueue([write('c'), write('d')])).rejects.toMatchObject({
      code: 'E_QUEUE_FULL',
      capacity: 3,
    })
    await q.ack(claimed.map((d) => d.id))
    await q.enqueue([write('c'), write('d')])
  })

  it('wakes a blocked consumer when items arrive', async () => {
    const q = createMemoryWriteQueue()
    const pending = q.claim(10, { blockMs: 5_000 })
    await q.enqueue([write('late')])
    expect((await pending).map((d) => d.item.key)).toEqual(['late'])
    expect(await q.claim(1, { blockMs: 20 })).toEqual([])
  })

  it('returns items of a consumer that never acked after the claim timeout', async () => {
    // The queue's clock moves only when the test moves it.
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000_000 })
    const q = createMemoryWriteQueue({ claimTimeout: 30 })
    await q.enqueue([write('a')])
    expect(await q.claim(1)).toHaveLength(1)
    vi.setSystemTime(1_000_029)
    expect(await q.claim(1)).toHaveLength(0)
    vi.setSystemTime(1_000_030)
    expect((await q.claim(1)).map((d) => d.attempts)).toEqual([2])
  })

  it('validates its options and arguments', async () => {
    expect(() => createMemoryWriteQueue({ capacity: 0 })).toThrow(/capacity/)
    expect(() => createMemoryWriteQueue({ claimTimeout: -1 })).toThrow(/claimTimeout/)
    await expect(createMemoryWriteQueue().claim(0)).rejects.toThrow(/max/)
    const q = createMemoryWriteQueue()
    await q.close()
    await expect(q.enqueue([write('a')])).rejects.toMatchObject({ code: 'E_CLOSED' })
  })
})

describe('lock provider (in-process)', () => {
  it('is exclusive, fenced, and wakes waiters on release', async () => {
    const locks = createLocalLockProvider()
    const a = await locks.acquire('actor:1', { ttl: NEVER })
    expect(a).toBeDefined()
    expect(await locks.acquire('actor:1', { ttl: NEVER })).toBeUndefined()
    // a retry delay longer than the test: only the release can wake the waiter in time
    const waiting = locks.acquire('actor:1', { ttl: NEVER, waitMs: NEVER, retryDelayMs: NEVER })
    await a!.release()
    const b = await waiting
    expect(b).toBeDefined()
    expect(b!.fence).toBeGreaterThan(a!.fence)
    expect(await a!.release()).toBe(false)
    expect(await a!.extend(1_000)).toBe(false)
    expect(await b!.extend(NEVER)).toBe(true)
    expect(await b!.release()).toBe(true)
  })

  it('lets a lock expire so a dead holder cannot block forever', async () => {
    const locks = createLocalLockProvider()
    const a = await locks.acquire('r', { ttl: 30 })
    const b = await locks.acquire('r', { ttl: NEVER, waitMs: 20_000, retryDelayMs: 5 })
    expect(b).toBeDefined()
    expect(await a!.release()).toBe(false)
    expect(await locks.acquire('r', { ttl: NEVER })).toBeUndefined()
  })

  it('validates arguments', async () => {
    const locks = createLocalLockProvider()
    await expect(locks.acquire('', { ttl: 10 })).rejects.toBeInstanceOf(InvalidKeyError)
    await expect(locks.acquire('r', { ttl: 0 })).rejects.toThrow(/ttl/)
    await expect(locks.acquire('r', { ttl: 10, waitMs: -1 })).rejects.toThrow(/waitMs/)
  })
})

runChangeLogConformance({ name: 'in-process', create: () => createMemoryChangeLog() })

describe('in-process change log conflicts', () => {
  const record = (id: string, version: number) => ({
    id,
    entityType: 'primary_core',
    entityId: 'actor:1',
    changeType: 'update' as const,
    oldValue: null,
    newValue: { hp: version },
    timestamp: version,
    userId: 'user:1',
    systemId: 'combat',
    version,
  })

  it('names the version that is taken and both changes, not a compare-and-set', async () => {
    const log = createMemoryChangeLog()
    await log.append([record('c-1', 1), record('c-2', 2)])
    const error = await log.append([record('c-3', 2)]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({
      code: 'E_CONFLICT',
      namespace: 'primary_core',
      key: 'actor:1',
      expectedVersion: 1,
      actualVersion: 2,
      message:
        'version conflict: version 2 of primary_core "actor:1" is taken by change "c-2", ' +
        'already in the log; change "c-3" was not appended, nor anything else of its batch',
    })
    expect((error as Error).message).not.toMatch(/expected version/)
  })

  it('names the change of the same batch that holds the version', async () => {
    const log = createMemoryChangeLog()
    await expect(log.append([record('a', 1), record('b', 1)])).rejects.toThrow(
      'version conflict: version 1 of primary_core "actor:1" is taken by change "a" of the same ' +
        'batch; change "b" was not appended, nor anything else of its batch',
    )
    expect(await log.history('primary_core', 'actor:1')).toEqual([])
  })

  it('keeps the compare-and-set wording unless given a message', () => {
    expect(new ConflictError(3, 4).message).toBe('version conflict: expected version 3, found 4')
    expect(new ConflictError(3, 4, { message: 'taken' })).toMatchObject({
      message: 'taken',
      expectedVersion: 3,
      actualVersion: 4,
    })
  })
})

describe('hardening', () => {
  it('keeps delivering when one bus listener throws, and resets that listener', async () => {
    const hub = createLocalBusHub()
    const a = hub.connect('a')
    const b = hub.connect('b')
    const resets: string[] = []
    const got: string[] = []
    b.subscribe({
      onInvalidate: () => {
        throw new Error('listener bug')
      },
      onReset: (r) => resets.push(r),
    })
    b.subscribe({ onInvalidate: (m) => got.push(...(m.keys ?? [])), onReset: () => {} })
    await a.publish({ namespace: 'n', keys: ['k'] })
    await tick()
    expect(got).toEqual(['k'])
    expect(resets).toEqual(['listener failed'])
  })

  it('refuses blocking claims beyond what a timer can wait, and locks after close', async () => {
    const q = createMemoryWriteQueue()
    await expect(q.claim(1, { blockMs: Infinity })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    })
    const locks = createLocalLockProvider()
    const held = await locks.acquire('r', { ttl: 10_000 })
    await locks.close()
    await expect(locks.acquire('r', { ttl: 10 })).rejects.toMatchObject({ code: 'E_CLOSED' })
    expect(held).toBeDefined()
  })
})
