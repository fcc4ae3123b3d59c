import { createHash } from 'node:crypto'
import { ErrorReply } from 'redis'
import type { CommandArgument, Commander } from './connection.js'

/** A Lua script called by SHA, sent in full only when the server does not know it (NOSCRIPT). */
export class Script {
  readonly source: string
  readonly sha: string
  constructor(source: string) {
    this.source = source
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  async run<T>(
    commander: Commander,
    keys: readonly string[],
    args: readonly CommandArgument[],
  ): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await commander.send<T>(['EVALSHA', this.sha, ...tail], keys[0])
    } catch (error) {
      if (!(error instanceof ErrorReply) || !error.message.startsWith('NOSCRIPT')) throw error
      // EVAL runs it and caches it on that node: later calls go by SHA again.
      return commander.send<T>(['EVAL', this.source, ...tail], keys[0])
    }
  }
}

/** Version of a stored entry ("AC1 [<version>,..."), 0 when absent or foreign. */
const VERSION_OF = `
local function version_of(v)
  if not v then return 0 end
  return tonumber(string.match(v, '^AC1 %[(%d+),')) or 0
end
`

/**
 * Versioned write. ARGV: mode ('auto' | 'version' | 'cas'), number, tail, pxat ('' = none).
 * Returns {1, version} applied, {0, stored} older version ignored, {-1, stored} CAS mismatch,
 * {-2, stored} no safe version left. Versions travel as strings (exact up to 2^53 - 1).
 */
export const SET_SCRIPT = new Script(`${VERSION_OF}
local current = version_of(redis.call('GET', KEYS[1]))
local shown = string.format('%.0f', current)
local mode = ARGV[1]
local version
if mode == 'version' then
  version = tonumber(ARGV[2])
  if version < current then return {0, shown} end
else
  if mode == 'cas' and tonumber(ARGV[2]) ~= current then return {-1, shown} end
  if current >= 9007199254740991 then return {-2, shown} end
  version = current + 1
end
local value = 'AC1 [' .. string.format('%.0f', version) .. ARGV[3]
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], value)
else
  redis.call('SET', KEYS[1], value, 'PXAT', ARGV[4])
end
return {1, string.format('%.0f', version)}
`)

/**
 * New expiry for an existing entry, in Redis and in the envelope header.
 * ARGV: pxat ('' = persist). Returns 1 when the key existed.
 */
export const SET_TTL_SCRIPT = new Script(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local head, rest = string.match(v, '^(AC1 %[%d+,[^,]+,)[^,]+(,.*)$')
if head then
  local expires = ARGV[1]
  if expires == '' then expires = 'null' end
  v = head .. expires .. rest
end
if ARGV[1] == '' then
  redis.call('SET', KEYS[1], v)
else
  redis.call('SET', KEYS[1], v, 'PXAT', ARGV[1])
end
return 1
`)

/**
 * Deletes a key only if it still holds exactly the bytes ARGV[1] (drops a value that cannot be
 * served, never a newer write).
 */
export const DELETE_IF_SCRIPT = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('UNLINK', KEYS[1]) end
return 0
`)
