import { ErrorReply } from 'redis'
import type { Commander } from './connection.js'
import { MAGIC, storedVersion } from './envelope.js'
import { SET_SCRIPT } from './scripts.js'

/** @internal A validated, encoded write, ready for the server. */
export interface PreparedWrite {
  key: string
  full: string
  mode: 'auto' | 'version' | 'cas'
  n: number
  tail: string
  /** Absolute expiry in ms as digits; '' for none. */
  pxat: string
}

/** @internal What the set script answers: a status and the version it shows, as digits. */
export type SetReply = [status: number, shown: string]

/** Servers that refused `SET ... NX GET` (before Redis 7.0): they get the script. */
const noInsertIfAbsent = new WeakSet<Commander>()

/**
 * Runs a versioned write (see `SET_SCRIPT` for the statuses). A compare-and-set that expects
 * the key absent (version 0: what every fill of a loaded value sends) goes as one plain
 * `SET key value NX GET`, which a server runs several times faster than a script call: the
 * key is written at version 1 when absent, and an entry already there is a mismatch showing its
 * version. Whatever else the key holds (bytes of another writer, which the script treats as
 * version 0 and overwrites) is left to the script, so the result is the script's in every case.
 */
export async function runVersionedSet(commander: Commander, p: PreparedWrite): Promise<SetReply> {
  if (p.mode === 'cas' && p.n === 0 && !noInsertIfAbsent.has(commander)) {
    const shown = await insertIfAbsent(commander, p)
    if (shown !== undefined) return shown
  }
  return SET_SCRIPT.run<SetReply>(commander, [p.full], [p.mode, String(p.n), p.tail, p.pxat])
}

/** The reply of an insert, or `undefined` when the key holds something the script must judge. */
async function insertIfAbsent(
  commander: Commander,
  p: PreparedWrite,
): Promise<SetReply | undefined> {
  const value = `${MAGIC}1${p.tail}`
  const args =
    p.pxat === ''
      ? ['SET', p.full, value, 'NX', 'GET']
      : ['SET', p.full, value, 'NX', 'GET', 'PXAT', p.pxat]
  let prior: string | null
  try {
    prior = await commander.send<string | null>(args, p.full)
  } catch (error) {
    if (!(error instanceof ErrorReply) || !/syntax/i.test(error.message)) throw error
    noInsertIfAbsent.add(commander)
    return undefined
  }
  if (prior === null) return [1, '1']
  const version = storedVersion(prior)
  return version > 0 ? [-1, String(version)] : undefined
}
