import type { ChangeLog } from '@actor-cache/core'
import { entityFrom, firstVersionAfter } from './catch-up.js'
import type { EntitySequencer } from './entity-sequencer.js'

/** Most entities one step resolves or backfills, so a step stays short. */
const PER_STEP = 64

/** What gap repair needs. */
export interface GapRepair {
  log: ChangeLog
  sequencer: EntitySequencer
  /** How long a missing version is awaited before it is read from the log (ms). */
  gapTimeout: number
  /** Backfill every open gap now (too many records wait). */
  urgent: boolean
  /** For subscriptions that start after a time: that time. */
  after: number | undefined
}

/**
 * Finds where entities first met without a known start begin (the first version stamped after
 * the subscription's time). True when it resolved any.
 */
export async function resolveStarts(ctx: GapRepair): Promise<boolean> {
  const unknown = ctx.sequencer.gaps().filter((g) => g.expected === undefined)
  for (const gap of unknown.slice(0, PER_STEP)) {
    const first = await firstVersionAfter(ctx.log, gap.entityType, gap.entityId, ctx.after ?? -1)
    // None in the log after that time: what arrived is all there is (it was read from the log).
    const start = first ?? ctx.sequencer.earliest(gap.entityType, gap.entityId) ?? 1
    ctx.sequencer.expect(gap.entityType, gap.entityId, start, Date.now())
  }
  return unknown.length > 0
}

/**
 * Reads from the log the entities whose next version is overdue (or all open gaps, when urgent)
 * and offers what it read. True when it backfilled any.
 */
export async function backfillOverdue(ctx: GapRepair): Promise<boolean> {
  const now = Date.now()
  // urgent skips the wait for gaps not tried yet; a gap a backfill left open waits its turn again
  const due = ctx.sequencer
    .gaps()
    .filter(
      (g) =>
        g.expected !== undefined &&
        ((ctx.urgent && g.attempts === 0) || g.since <= now - ctx.gapTimeout),
    )
  for (const gap of due.slice(0, PER_STEP)) {
    const expected = gap.expected as number
    const records = await entityFrom(ctx.log, gap.entityType, gap.entityId, expected)
    ctx.sequencer.backfill(gap.entityType, gap.entityId, records, Date.now())
  }
  return due.length > 0
}

/** Time until the oldest open gap is due for a backfill (ms), or `idle` when none is open. */
export function untilDue(sequencer: EntitySequencer, gapTimeout: number, idle: number): number {
  const oldest = sequencer.gaps()[0]
  if (oldest === undefined) return idle
  return Math.max(1, Math.min(idle, oldest.since + gapTimeout - Date.now()))
}
