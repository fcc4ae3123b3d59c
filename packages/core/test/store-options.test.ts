import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { describe, expect, it } from 'vitest'
import {
  ActorCacheError,
  CHANNELS,
  ConflictError,
  errors,
  InvalidOptionError,
  isActorCacheError,
  publish,
  remainingTtl,
  resolveSetOptions,
} from '../src/index.js'

describe('resolveSetOptions', () => {
  it('applies the default TTL and absolute expiry', () => {
    expect(resolveSetOptions(undefined, 1_000, 50)).toMatchObject({
      expiresAt: 1_050,
      createdAt: 50,
      tags: [],
    })
    expect(resolveSetOptions(undefined, Infinity, 50).expiresAt).toBeNull()
    expect(resolveSetOptions(200, Infinity, 50).expiresAt).toBe(250)
    expect(resolveSetOptions({ ttl: Infinity }, 1_000, 50).expiresAt).toBeNull()
    expect(resolveSetOptions({ expiresAt: 99 }, 1_000, 50).expiresAt).toBe(99)
    expect(resolveSetOptions({ expiresAt: null }, 1_000, 50).expiresAt).toBeNull()
  })

  it('names the offending option', () => {
    const bad: [unknown, string][] = [
      [{ ttl: -1 }, 'ttl'],
      [{ ttl: '10' }, 'ttl'],
      [{ expiresAt: 'soon' }, 'expiresAt'],
      [{ version: -3 }, 'version'],
      [{ version: 2 ** 60 }, 'version'],
      [{ expectedVersion: 1.5 }, 'expectedVersion'],
      [{ expectedVersion: 1, version: 2 }, 'version'],
      [{ createdAt: Number.NaN }, 'createdAt'],
      ['x', 'options'],
    ]
    for (const [options, option] of bad) {
      const error = (() => {
        try {
          resolveSetOptions(options as never, 1_000, 0)
        } catch (e) {
          return e
        }
      })()
      expect(error).toBeInstanceOf(InvalidOptionError)
      expect(error).toMatchObject({ option, code: 'E_INVALID_OPTION' })
    }
  })

  it('computes remaining TTL', () => {
    expect(remainingTtl({ expiresAt: null }, 5)).toBe(Infinity)
    expect(remainingTtl({ expiresAt: 10 }, 5)).toBe(5)
    expect(remainingTtl({ expiresAt: 10 }, 50)).toBe(0)
  })
})

describe('errors', () => {
  it('carry stable codes, names, context and cause', () => {
    const cause = new Error('boom')
    const e = new ConflictError(3, 4, { tier: 'redis', namespace: 'ns', key: 'k', cause })
    expect(e).toBeInstanceOf(ActorCacheError)
    expect(e).toMatchObject({
      name: 'ConflictError',
      code: 'E_CONFLICT',
      tier: 'redis',
      namespace: 'ns',
      key: 'k',
    })
    expect(e.cause).toBe(cause)
    expect(isActorCacheError(e, 'E_CONFLICT')).toBe(true)
    expect(isActorCacheError(e, 'E_QUEUE_FULL')).toBe(false)
    expect(isActorCacheError(new Error('x'))).toBe(false)
    const codes = Object.values(errors)
      .filter((cls) => cls !== ActorCacheError)
      .map((cls) => cls.name)
    expect(new Set(codes).size).toBe(codes.length)
  })
})

describe('events', () => {
  it('publishes only to subscribers', () => {
    const seen: unknown[] = []
    const onMiss = (message: unknown): void => {
      seen.push(message)
    }
    publish('miss', { tier: 't', namespace: 'n', durationMs: 0 })
    subscribe(CHANNELS.miss, onMiss)
    publish('miss', { tier: 't', namespace: 'n', key: 'k', durationMs: 1 })
    unsubscribe(CHANNELS.miss, onMiss)
    publish('miss', { tier: 't', namespace: 'n', durationMs: 0 })
    expect(seen).toEqual([{ tier: 't', namespace: 'n', key: 'k', durationMs: 1 }])
  })
})
