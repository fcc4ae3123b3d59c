/** Helpers of the change-stream tests: writers and checks of what subscribers saw. */
import type { ChangeRecord } from '@actor-cache/core'
import { expect } from 'vitest'
import type { ChangeSubscription, StateTracker } from '../src/index.js'

/** Logs the next change of an entity (create when `version` is 1). */
export async function write(
  tracker: StateTracker,
  entityType: string,
  entityId: string,
  version: number,
): Promise<ChangeRecord> {
  return tracker.trackChange({
    entityType,
    entityId,
    changeType: version === 1 ? 'create' : 'update',
    newValue: { n: version },
    userId: 'user:test',
    systemId: 'test',
  })
}

/** Writes `versions` changes to each entity, entity after entity in rounds. */
export async function writeRounds(
  tracker: StateTracker,
  entityType: string,
  ids: readonly string[],
  rounds: { from: number; to: number },
): Promise<void> {
  for (let v = rounds.from; v <= rounds.to; v++) {
    for (const id of ids) await write(tracker, entityType, id, v)
  }
}

/** Takes `n` changes from a subscription (the test's timeout bounds a stream that stalls). */
export async function take(sub: ChangeSubscription, n: number): Promise<ChangeRecord[]> {
  const out: ChangeRecord[] = []
  for (let i = 0; i < n; i++) {
    const next = await sub.next()
    if (next.done === true) throw new Error(`subscription ended after ${out.length} of ${n}`)
    out.push(next.value)
  }
  return out
}

/**
 * Asserts that each entity's changes came as versions `from[entity]..to[entity]`, each once,
 * in order.
 */
export function expectSequences(
  records: readonly ChangeRecord[],
  expected: ReadonlyMap<string, { from: number; to: number }>,
): void {
  const seen = new Map<string, number[]>()
  for (const r of records) {
    const key = `${r.entityType}/${r.entityId}`
    const list = seen.get(key) ?? []
    list.push(r.version)
    seen.set(key, list)
  }
  expect([...seen.keys()].sort()).toEqual([...expected.keys()].sort())
  for (const [key, range] of expected) {
    const want = Array.from({ length: range.to - range.from + 1 }, (_, i) => range.from + i)
    expect(seen.get(key), key).toEqual(want)
  }
}

/** Number of active timers and sockets of this process (open handles). */
export function openHandles(): number {
  return process
    .getActiveResourcesInfo()
    .filter((r) => r === 'Timeout' || r === 'TCPSocketWrap' || r === 'TCPWRAP').length
}
