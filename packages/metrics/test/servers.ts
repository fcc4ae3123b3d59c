/** The private redis-server of the health tests: see `@actor-cache/test-utils/redis-server`. */
export { privateRedis, type RedisServer } from '@actor-cache/test-utils/redis-server'
