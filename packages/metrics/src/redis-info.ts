/** What a health check reads from Redis `INFO`. */
export interface RedisDetails {
  usedMemory: number | undefined
  /** 0 when Redis has no memory limit. */
  maxMemory: number | undefined
  maxMemoryPolicy: string | undefined
  connectedClients: number | undefined
  blockedClients: number | undefined
  evictedKeys: number | undefined
  rejectedConnections: number | undefined
  /** Why `INFO` could not be read (an ACL may forbid it); the L2 status does not depend on it. */
  infoError?: string
}

/** A client that answers Redis `INFO` as text: a node-redis client fits. */
export interface RedisInfoSource {
  info(section?: string): Promise<string>
}

/** The message of an error, or the thrown value as text. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Reads the figures a health report needs from Redis `INFO`; never throws. */
export async function redisDetails(source: RedisInfoSource): Promise<RedisDetails> {
  let text: string
  try {
    text = await source.info()
  } catch (error) {
    return {
      usedMemory: undefined,
      maxMemory: undefined,
      maxMemoryPolicy: undefined,
      connectedClients: undefined,
      blockedClients: undefined,
      evictedKeys: undefined,
      rejectedConnections: undefined,
      infoError: message(error),
    }
  }
  const fields = new Map<string, string>()
  for (const line of String(text).split(/\r?\n/)) {
    const at = line.indexOf(':')
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1).trim())
  }
  const num = (k: string): number | undefined => {
    const v = fields.get(k)
    const n = v === undefined ? Number.NaN : Number(v)
    return Number.isFinite(n) ? n : undefined
  }
  return {
    usedMemory: num('used_memory'),
    maxMemory: num('maxmemory'),
    maxMemoryPolicy: fields.get('maxmemory_policy'),
    connectedClients: num('connected_clients'),
    blockedClients: num('blocked_clients'),
    evictedKeys: num('evicted_keys'),
    rejectedConnections: num('rejected_connections'),
  }
}
