export { type BreakerOptions, type BreakerState, CircuitBreaker } from './breaker.js'
export {
  type AnyRedisClient,
  type ClusterClient,
  type ConnectOptions,
  connectRedis,
  isCluster,
  type RedisComponentOptions,
  redisClientOptions,
  type SingleClient,
} from './connection.js'
export { createRedisStore, RedisStore, type RedisStoreOptions, RedisTier } from './redis-store.js'
export { keySlot } from './slot.js'
