/**
 * Real services for the tests: Redis at REDIS_URL (default 127.0.0.1:6379, a unique key prefix per
 * call) and PostgreSQL at DATABASE_URL (a fresh schema per call, migrated). A test that cannot
 * reach one fails, naming what to start.
 */
import { randomUUID } from 'node:crypto'
import { migrate } from '@actor-cache/prisma-store'
import { connectPostgres, type PrismaClient } from '@actor-cache/prisma-store/client'
import type { AnyRedisClient } from '@actor-cache/redis'
import { createClient } from 'redis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

/** A short unique id for prefixes and schema names. */
export const uid = (): string => randomUUID().replaceAll('-', '').slice(0, 12)

/** A connected node-redis client. */
export async function redis(url = REDIS_URL): Promise<AnyRedisClient> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: 50, connectTimeout: 2000 },
  })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `these tests need Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as unknown as AnyRedisClient
}

/** Deletes every key under `prefix:` (test cleanup). */
export async function dropPrefix(client: AnyRedisClient, prefix: string): Promise<void> {
  const c = client as unknown as ReturnType<typeof createClient>
  for await (const keys of c.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length > 0) await c.unlink(keys)
  }
}

export interface TestDb {
  prisma: PrismaClient
  schema: string
  url: string
  drop(): Promise<void>
}

/** A fresh, migrated schema on the PostgreSQL server. */
export async function postgres(url = DATABASE_URL): Promise<TestDb> {
  const schema = `ac_strat_${uid()}`
  const admin = await connectPostgres(DATABASE_URL)
  try {
    await admin.$executeRawUnsafe(`CREATE SCHEMA "${schema}"`)
  } catch (error) {
    await admin.$disconnect()
    throw new Error(
      `these tests need PostgreSQL at ${DATABASE_URL} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  const prisma = await connectPostgres(url, { schema, connectionTimeoutMillis: 1000 })
  await migrate(prisma)
  return {
    prisma,
    schema,
    url,
    async drop() {
      await prisma.$disconnect()
      await admin.$executeRawUnsafe(`DROP SCHEMA "${schema}" CASCADE`)
      await admin.$disconnect()
    },
  }
}

/** Polls `check` every 5 ms until it holds, or fails after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A promise with its resolve and reject. */
export function deferred<T>(): {
  promise: Promise<T>
  resolve: (v: T) => void
  reject: (e: unknown) => void
} {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A clock tests move by hand. */
export function fakeClock(start = Date.now()): {
  now: () => number
  advance: (ms: number) => void
} {
  let t = start
  return { now: () => t, advance: (ms) => (t += ms) }
}

/** Decides what a store method call does: `call()` runs it as it is. */
export type Around = (method: string, call: () => unknown, args: unknown[]) => unknown

/** A store whose method calls go through `around` (to delay, fail or count them). */
export function intercept<S extends object>(store: S, around: Around): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      return (...args: unknown[]) =>
        around(String(prop), () => (v as (...a: unknown[]) => unknown).apply(target, args), args)
    },
  })
}

/** A tier whose stores' method calls go through `around` (see {@link intercept}). */
export function interceptTier<T extends { namespace(...a: never[]): object }>(
  tier: T,
  around: Around,
): T {
  return new Proxy(tier, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      if (prop !== 'namespace') return v.bind(target)
      return (...args: never[]) => intercept((v as T['namespace']).apply(target, args), around)
    },
  })
}
