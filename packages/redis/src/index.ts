export { type BreakerOptions, type BreakerState, CircuitBreaker } from './breaker.js'
export { createRedisBus, RedisBus, type RedisBusOptions } from './bus.js'
export type { RedisChangeReader } from './change-reader.js'
export { createRedisChangeTransport, RedisChangeTransport } from './change-transport.js'
export type {
  RedisChangeTransportClientOptions,
  RedisChangeTransportCommonOptions,
  RedisChangeTransportOptions,
  RedisChangeTransportUrlOptions,
} from './change-transport-options.js'
export {
  type AnyRedisClient,
  type ClusterClient,
  type CommandArgument,
  type CommandOptions,
  type ConnectOptions,
  connectRedis,
  isCluster,
  type RedisComponentOptions,
  redisClientOptions,
  type SingleClient,
} from './connection.js'
export { createRedisLockProvider, type RedisLockOptions, RedisLockProvider } from './lock.js'
export { createRedisWriteQueue, RedisWriteQueue } from './queue.js'
export type { RedisWriteQueueOptions } from './queue-options.js'
export { RedisStore } from './redis-store.js'
export { createRedisStore, type RedisStoreOptions, RedisTier } from './redis-tier.js'
export { keySlot } from './slot.js'
