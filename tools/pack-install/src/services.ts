import { connect } from 'node:net'
import pg from 'pg'
import { createClient } from 'redis'

/** Where the program finds PostgreSQL and Redis. */
export interface Services {
  readonly databaseUrl: string
  readonly redisUrl: string
}

export function servicesFromEnv(): Services {
  return {
    databaseUrl: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  }
}

/** Fails, naming what to start, when PostgreSQL or Redis does not accept connections. */
export async function checkServices(services: Services): Promise<void> {
  const missing: string[] = []
  for (const [what, url, port] of [
    ['PostgreSQL', services.databaseUrl, 5432],
    ['Redis', services.redisUrl, 6379],
  ] as const) {
    const { hostname, port: given } = new URL(url)
    const host = hostname || '127.0.0.1'
    if (!(await reachable(host, Number(given || port)))) {
      missing.push(`${what} at ${host}:${given || port}`)
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `pack-install needs ${missing.join(' and ')}: start it (or set DATABASE_URL / REDIS_URL)`,
    )
  }
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

/** A schema of its own for one run: created empty, dropped afterwards. */
export async function withSchema<T>(
  databaseUrl: string,
  schema: string,
  body: (url: string) => Promise<T>,
): Promise<T> {
  const sql = async (text: string) => {
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    try {
      await client.query(text)
    } finally {
      await client.end()
    }
  }
  await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; CREATE SCHEMA "${schema}"`)
  try {
    const url = new URL(databaseUrl)
    url.searchParams.set('schema', schema)
    return await body(url.toString())
  } finally {
    await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  }
}

/** Deletes every Redis key under `prefix:` (what the program left: entries, queue stream). */
export async function clearPrefix(redisUrl: string, prefix: string): Promise<void> {
  const client = createClient({ url: redisUrl })
  await client.connect()
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) {
      if (keys.length > 0) await client.unlink(keys)
    }
  } finally {
    await client.close()
  }
}
