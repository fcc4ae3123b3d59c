import { PrismaPg } from '@prisma/adapter-pg'
import { describe, expect, it } from 'vitest'
import { PrismaClient } from '../src/generated/prisma/client.js'
import { createPrismaChangeLog, createPrismaStore } from '../src/index.js'

describe('an unreachable database', () => {
  it('fails every operation with E_TIER_UNAVAILABLE within the bound, never hanging', async () => {
    // nothing listens on port 1
    const prisma = new PrismaClient({
      adapter: new PrismaPg({
        connectionString: 'postgresql://postgres@127.0.0.1:1/none',
        connectionTimeoutMillis: 300,
      }),
    })
    const store = createPrismaStore({ prisma, timeout: 1000 }).namespace('ns')
    const log = createPrismaChangeLog({ prisma, timeout: 1000 })
    for (const op of [
      () => store.get('k'),
      () => store.set('k', 1),
      () => store.clear(),
      () => log.history('t', 'e'),
    ]) {
      const t0 = performance.now()
      await expect(op()).rejects.toMatchObject({ code: 'E_TIER_UNAVAILABLE', tier: 'postgres' })
      expect(performance.now() - t0).toBeLessThan(3000)
    }
    await prisma.$disconnect()
  })

  it('still rejects bad input before trying to connect', async () => {
    const prisma = new PrismaClient({
      adapter: new PrismaPg({
        connectionString: 'postgresql://postgres@127.0.0.1:1/none',
        connectionTimeoutMillis: 300,
      }),
    })
    const store = createPrismaStore({ prisma, timeout: 1000 }).namespace('ns')
    await expect(store.set('', 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    await expect(store.set('k', () => 1)).rejects.toMatchObject({ code: 'E_SERIALIZATION' })
    await expect(store.deletePattern('a[')).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    expect(() => createPrismaStore({ prisma, timeout: 0 })).toThrow(/timeout/)
    await prisma.$disconnect()
  })
})
