/**
 * Servers the fault tests can break: a private redis-server (killed, restarted on the same port,
 * stopped with SIGSTOP and resumed; shared with the other packages' fault tests) and a TCP proxy
 * that cuts every connection to PostgreSQL.
 */
export { privateRedis, type RedisServer } from '@actor-cache/test-utils/redis-server'
export { TcpProxy } from '@actor-cache/test-utils/tcp-proxy'
