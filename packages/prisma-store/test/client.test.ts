/**
 * `@actor-cache/prisma-store/client` on PostgreSQL: the schema a user names (option or
 * `?schema=`) is where migrate() puts the tables, the store finds them and the generated client
 * queries; a schema that does not exist is reported as such.
 */
import { randomUUID } from 'node:crypto'
import { InvalidOptionError, TierUnavailableError } from '@actor-cache/core'
import { PrismaPg } from '@prisma/adapter-pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectPostgres, type PrismaClient } from '../src/client.js'
import { PrismaClient as GeneratedClient } from '../src/generated/prisma/client.js'
import { createPrismaStore, migrate } from '../src/index.js'
import { DATABASE_URL } from './db.js'

const url = (query: Record<string, string>): string => {
  const u = new URL(DATABASE_URL)
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v)
  return u.toString()
}

describe('connectPostgres schemas', () => {
  // mixed case: the search_path and the generated client must both keep it
  const schema = `Ac_Client_${randomUUID().replaceAll('-', '').slice(0, 8)}`
  let admin: GeneratedClient
  const opened: PrismaClient[] = []
  const open = async (...args: Parameters<typeof connectPostgres>): Promise<PrismaClient> => {
    const client = await connectPostgres(...args)
    opened.push(client)
    return client
  }
  beforeAll(async () => {
    admin = new GeneratedClient({
      adapter: new PrismaPg({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 }),
    })
    try {
      await admin.$executeRawUnsafe(`CREATE SCHEMA "${schema}"`)
    } catch (error) {
      throw new Error(
        `these tests need PostgreSQL at ${DATABASE_URL} (start it, or set DATABASE_URL): ${(error as Error).message}`,
      )
    }
  })
  afterAll(async () => {
    for (const client of opened) await client.$disconnect()
    await admin?.$executeRawUnsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin?.$disconnect()
  })

  it('honours ?schema= in the URL: tables, store and generated client all use it', async () => {
    const prisma = await open(url({ schema }))
    await migrate(prisma)
    const store = createPrismaStore({ prisma }).namespace<{ hp: number }>('primary_core')
    await store.set('actor:1', { hp: 5 }, { version: 3 })
    const tables = await admin.$queryRawUnsafe<{ table_name: string }[]>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`,
      schema,
    )
    expect(tables.map((t) => t.table_name)).toEqual([
      '_prisma_migrations',
      'ac_cache_entries',
      'ac_dead_letters',
      'ac_state_changes',
    ])
    const row = await prisma.cacheEntry.findUnique({
      where: { namespace_key: { namespace: 'primary_core', key: 'actor:1' } },
    })
    expect(row).toMatchObject({ version: 3n, value: '{"hp":5}' })
  })

  it('takes the same schema from the option, and keeps the URL options after its own', async () => {
    const prisma = await open(url({ schema, options: '-c statement_timeout=4321' }), { schema })
    expect(
      await createPrismaStore({ prisma }).namespace('primary_core').get('actor:1'),
    ).toMatchObject({ value: { hp: 5 }, version: 3 })
    const [settings] = await prisma.$queryRawUnsafe<{ timeout: string; schema: string }[]>(
      `SELECT current_setting('statement_timeout') AS timeout, current_schema() AS schema`,
    )
    expect(settings).toEqual({ timeout: '4321ms', schema })
  })

  it('refuses two different schemas, and names that are not plain identifiers', async () => {
    await expect(connectPostgres(url({ schema }), { schema: 'other' })).rejects.toThrow(
      InvalidOptionError,
    )
    await expect(connectPostgres(url({ schema: 'a;b' }))).rejects.toThrow(
      /schema: must be a plain identifier/,
    )
    await expect(connectPostgres(DATABASE_URL, { statementTimeout: 0 })).rejects.toThrow(
      InvalidOptionError,
    )
  })

  it('migrate() on a schema that does not exist says to create it', async () => {
    const missing = `ac_missing_${randomUUID().replaceAll('-', '').slice(0, 8)}`
    const prisma = await open(url({ schema: missing }))
    const error = await migrate(prisma).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TierUnavailableError)
    expect(error).toMatchObject({ code: 'E_TIER_UNAVAILABLE', tier: 'postgres' })
    expect((error as Error).message).toContain(`CREATE SCHEMA "${missing}"`)
    expect((error as Error).message).not.toMatch(/P2010|3F000/)
    // and the store, on the same client, says that the tables are missing
    await expect(createPrismaStore({ prisma }).namespace('n').get('k')).rejects.toThrow(
      /run migrate\(prisma\)/,
    )
  })
})
