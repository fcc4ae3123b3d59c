/**
 * Type test: the clients node-redis creates fit the `client` option as they are, with no cast
 * (checked by the package's typecheck, part of the test command).
 */
import { createClient, createCluster } from 'redis'
import { describe, expectTypeOf, it } from 'vitest'
import type { AnyRedisClient, ClusterClient, SingleClient } from '../src/index.js'

describe('node-redis clients', () => {
  it('fit the client option without a cast', () => {
    const single = createClient({ url: 'redis://127.0.0.1:6379' })
    const cluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }] })
    const a: SingleClient = single
    const b: ClusterClient = cluster
    const c: AnyRedisClient = single
    const d: AnyRedisClient = createClient({ RESP: 3 })
    const e: AnyRedisClient = cluster
    expectTypeOf([a, b, c, d, e]).toBeArray()
  })
})
