import type { SingleClient } from '@actor-cache/redis'
import { createClient } from 'redis'

/** A node-redis client at `url` for the `suite` benchmark, or an error saying what to start. */
export async function connectRedis(url: string, suite: string): Promise<SingleClient> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2000 } })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `the ${suite} benchmark needs Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as unknown as SingleClient
}
