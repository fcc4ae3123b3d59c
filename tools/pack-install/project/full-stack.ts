// A user's program on the installed tarballs: L1 memory + L2 Redis + L3 PostgreSQL, with a Redis
// bus, lock and write queue; a write-through write, a read, a write-behind write, an invalidation,
// then everything closed. It must leave nothing open: it prints what is still active (right after
// the last close() and once the event loop settled) and the runner checks that nothing is left and
// that the process exits by itself.
import assert from 'node:assert/strict'
import { parseCacheConfig } from '@actor-cache/core'
import { createMemCache } from '@actor-cache/memcache'
import { createPrismaDeadLetters, createPrismaStore, migrate } from '@actor-cache/prisma-store'
import { connectPostgres } from '@actor-cache/prisma-store/client'
import {
  connectRedis,
  createRedisBus,
  createRedisLockProvider,
  createRedisStore,
  createRedisWriteQueue,
} from '@actor-cache/redis'
import { createTieredCache } from '@actor-cache/strategies'

interface Profile {
  name: string
  level: number
}
interface Score {
  points: number
}

// What a process has open before it opens anything: stdout and stderr (pipes to the runner).
process.stdout.write('full-stack: start\n')
process.stderr.write('')
const baseline = process.getActiveResourcesInfo()

const databaseUrl = process.env.DATABASE_URL
const redisUrl = process.env.REDIS_URL
const prefix = process.env.CACHE_PREFIX
if (!databaseUrl || !redisUrl || !prefix) {
  throw new Error('set DATABASE_URL (with ?schema=), REDIS_URL and CACHE_PREFIX')
}

const config = parseCacheConfig({ redis: { url: redisUrl } })
if (!config.redis) throw new Error('the configuration has no redis: section')
const redis = await connectRedis(config.redis)
const prisma = await connectPostgres(databaseUrl) // ?schema= in the URL selects the schema
await migrate(prisma)

const redisOptions = { client: redis, prefix }
const l1 = createMemCache({ maxSize: 16 * 1024 * 1024 })
const l2 = createRedisStore(redisOptions)
const l3 = createPrismaStore({ prisma }) // the store of record
const bus = createRedisBus(redisOptions)
const lock = createRedisLockProvider(redisOptions)
const queue = createRedisWriteQueue({ ...redisOptions, name: 'pack-install' })
const deadLetters = createPrismaDeadLetters({ prisma })
const cache = createTieredCache<{ profiles: Profile; scores: Score }>({
  l1,
  l2,
  l3,
  bus,
  lock,
  queue,
  deadLetters,
  namespaces: {
    profiles: { ttl: 60_000 },
    scores: { ttl: 60_000, strategy: 'write_behind' },
  },
})
const profiles = cache.namespace('profiles')
const scores = cache.namespace('scores')

// write-through: in PostgreSQL when set() resolves, and cached in L1 and L2
await profiles.set('actor:1', { name: 'Ayla', level: 3 })
assert.deepEqual((await l3.namespace<Profile>('profiles').get('actor:1'))?.value, {
  name: 'Ayla',
  level: 3,
})
assert.deepEqual((await l2.namespace<Profile>('profiles').get('actor:1'))?.value, {
  name: 'Ayla',
  level: 3,
})
const profile: Profile | undefined = await profiles.get('actor:1')
assert.deepEqual(profile, { name: 'Ayla', level: 3 })
assert.equal(profiles.stats().l1Hits, 1, 'the read after the write is an L1 hit')

// write-behind: queued in Redis, readable at once, in PostgreSQL after a flush
await scores.set('actor:1', { points: 10 })
assert.deepEqual(await scores.get('actor:1'), { points: 10 })
await cache.flush() // the flusher may have persisted it already: flush() waits for the rest
assert.deepEqual((await l3.namespace<Score>('scores').get('actor:1'))?.value, { points: 10 })

// invalidation: the caches drop the key, the record keeps it, the next read comes from it
await cache.invalidate({ namespace: 'profiles', keys: ['actor:1'] })
assert.equal(l1.namespace('profiles').getSync('actor:1'), undefined, 'L1 dropped the key')
assert.equal(await l2.namespace('profiles').get('actor:1'), undefined, 'L2 dropped the key')
const recordReads = profiles.stats().recordHits
assert.deepEqual(await profiles.get('actor:1'), { name: 'Ayla', level: 3 })
assert.equal(profiles.stats().recordHits, recordReads + 1, 'read again from the record')

// close: the cache first, then everything this program created
await cache.close()
await Promise.all([queue.close(), bus.close(), lock.close(), l1.close(), l2.close(), l3.close()])
await redis.close()
await prisma.$disconnect()

// What is still active beyond stdio: sockets that close() destroyed finish closing on a later turn
// of the event loop, so wait (bounded) until nothing is left, then report both lists.
const opened = () => {
  const left = [...process.getActiveResourcesInfo()]
  for (const name of baseline) {
    const at = left.indexOf(name)
    if (at >= 0) left.splice(at, 1)
  }
  return left
}
const closedAt = performance.now()
console.log(`@@closed ${JSON.stringify(opened())}`)
let left = opened()
for (let i = 0; i < 500 && left.length > 0; i++) {
  await new Promise((resolve) => setTimeout(resolve, 10))
  left = opened() // this timer has fired: it is not in the list
}
console.log(`@@settled ${Math.round(performance.now() - closedAt)} ${JSON.stringify(left)}`)
