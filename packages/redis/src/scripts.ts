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

/** Reads the version head (KEYS[2]), else the floor in ARGV[f], ARGV[f+1]; nil when neither. */
const HEAD_OF = `
local function head_of(f)
  local h = redis.call('GET', KEYS[2])
  if h then
    return tonumber(string.match(h, '^(%d+)')), string.sub(h, -1) ~= 'd'
  end
  if ARGV[f] == '' then return nil, false end
  return tonumber(ARGV[f]), ARGV[f + 1] == '1'
end
`

/**
 * Claimed write: the next version after the head (KEYS[2]) stored with the value (KEYS[1]),
 * whatever version the value key held. ARGV: mode ('auto' | 'version' | 'cas'), number, tail,
 * value pxat ('' = none), floor version ('' = none), floor exists ('1' | '0'), head pxat ('' =
 * none). Returns {1, version, previous head, previous head live (1 | 0)} applied, {0, head} explicit version not above the head, {-1, seen}
 * CAS mismatch, {-2, head} no safe version left, {-3, '0'} no head and no floor.
 */
export const CLAIM_SET_SCRIPT = new Script(`${HEAD_OF}
local head, live = head_of(5)
if not head then return {-3, '0'} end
local mode = ARGV[1]
local version
if mode == 'version' then
  version = tonumber(ARGV[2])
  if version <= head then return {0, string.format('%.0f', head)} end
else
  local seen = head
  if not live then seen = 0 end
  if mode == 'cas' and tonumber(ARGV[2]) ~= seen then return {-1, string.format('%.0f', seen)} end
  if head >= 9007199254740991 then return {-2, string.format('%.0f', head)} end
  version = head + 1
end
local shown = string.format('%.0f', version)
local was = 0
if live then was = 1 end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], 'AC1 [' .. shown .. ARGV[3])
else
  redis.call('SET', KEYS[1], 'AC1 [' .. shown .. ARGV[3], 'PXAT', ARGV[4])
end
if ARGV[7] == '' then
  redis.call('SET', KEYS[2], shown)
else
  redis.call('SET', KEYS[2], shown, 'PXAT', ARGV[7])
end
return {1, shown, string.format('%.0f', head), was}
`)

/**
 * Claimed delete: the next version after the head (KEYS[2]), kept as a deleted head; the value
 * (KEYS[1]) is removed. ARGV: mode ('auto' | 'cas'), number, floor version ('' = none), floor
 * exists, head pxat ('' = none). Returns {1, version, previous head, 1} deleted, {0, head, head, 0}
 * absent already (no version taken; the value key is removed all the same), {-1, seen} CAS mismatch, {-2, head}
 * no safe version left, {-3, '0'} no head and no floor.
 */
export const CLAIM_DELETE_SCRIPT = new Script(`${HEAD_OF}
local head, live = head_of(3)
if not head then return {-3, '0'} end
local seen = head
if not live then seen = 0 end
if ARGV[1] == 'cas' and tonumber(ARGV[2]) ~= seen then return {-1, string.format('%.0f', seen)} end
if not live then
  -- absent already: nothing to version (a loaded copy still goes)
  redis.call('UNLINK', KEYS[1])
  return {0, string.format('%.0f', head), string.format('%.0f', head), 0}
end
if head >= 9007199254740991 then return {-2, string.format('%.0f', head)} end
local shown = string.format('%.0f', head + 1)
redis.call('UNLINK', KEYS[1])
if ARGV[5] == '' then
  redis.call('SET', KEYS[2], shown .. 'd')
else
  redis.call('SET', KEYS[2], shown .. 'd', 'PXAT', ARGV[5])
end
local existed = 0
if live then existed = 1 end
return {1, shown, string.format('%.0f', head), existed}
`)

/**
 * Takes back a claim whose write was refused: the head (KEYS[1]) goes back to ARGV[2] (a head
 * string) if it still is ARGV[1], keeping its expiry. Returns 1 when it did.
 */
export const RELEASE_CLAIM_SCRIPT = new Script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
`)
