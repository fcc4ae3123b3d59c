/**
 * A relay killed at random points (SIGKILL, 20 trials: half at a random moment, half right after
 * a publish, before its checkpoint) loses and repeats nothing downstream: each trial's relay (test/fixtures/relay.mjs, on the BUILT packages) takes the lease over from the
 * killed one and publishes again what that one published but had not checkpointed; the
 * subscriber drops those by (entity, version). Writers run throughout.
 */
import { once } from 'node:events'
import type { ChangeRecord } from '@actor-cache/core'
import { createPrismaChangeLog } from '@actor-cache/prisma-store'
import { LONG } from '@actor-cache/test-utils/property'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChangeRelay, createChangeStream, createStateTracker } from '../src/index.js'
import { type Child, spawnChild } from './child.js'
import { DATABASE_URL } from './logs.js'
import {
  openProcessStack,
  type ProcessStack,
  REDIS_URL,
  streamName,
  transportOn,
  until,
} from './relay-stack.js'
import { expectSequences } from './stream-helpers.js'

const TRIALS = 20 * LONG
const ENTITIES = 40
const SEED = Number(process.env.SEED ?? Date.now() % 100_000)

describe('relays killed at random points (postgres, redis)', () => {
  let stack: ProcessStack
  beforeAll(async () => {
    stack = await openProcessStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  it(
    `delivers every version once, in order, over ${TRIALS} relay kills`,
    async () => {
      let seed = SEED
      const random = (): number => {
        seed = (seed * 1103515245 + 12345) >>> 0
        return seed / 2 ** 32
      }
      const log = createPrismaChangeLog({ prisma: stack.db.prisma })
      const tracker = createStateTracker({ log, systemId: 'kill-test' })
      const stream = streamName(`kill${SEED}x`)
      const transport = transportOn(stack.client, { name: stream })
      const changes = createChangeStream({ log, transport })
      // it starts once the first relay has saved a checkpoint: its catch-up covers what came before
      const sub = changes.subscribe({ entityType: 'kill_core' }, { afterTime: 0 })
      // the subscriber takes changes as they come, so relays' re-published batches reach it live
      const got: ChangeRecord[] = []
      const consuming = (async () => {
        for await (const r of sub) got.push(r)
      })()
      const versions = new Map<string, number>()
      let writing = true
      const writer = async (w: number): Promise<void> => {
        while (writing) {
          const id = `actor:${w}-${Math.floor(random() * (ENTITIES / 2))}`
          const v = (versions.get(id) ?? 0) + 1
          await tracker.trackChange({
            entityType: 'kill_core',
            entityId: id,
            changeType: v === 1 ? 'create' : 'update',
            newValue: { v },
            userId: 'user:test',
          })
          versions.set(id, v)
          // continuous, but leaving the machine to the relays being killed and started
          await new Promise((r) => setTimeout(r, 10))
        }
      }
      const writers = [0, 1].map(writer)
      const children: Child[] = []
      /** Relays that kill themselves right after a publish (DIE_AT), the others killed here. */
      const selfKilling = new Set<Child>()
      const spawnRelay = (t: number): Child => {
        const dies = t % 2 === 1
        const child = spawnChild('test/fixtures/relay.mjs', {
          ...(dies ? { DIE_AT: String(1 + Math.floor(random() * 4)) } : {}),
          DATABASE_URL,
          SCHEMA: stack.schema,
          REDIS_URL,
          STREAM: stream,
          SHARDS: '4',
          LEASE_TTL: '300',
          ID: `relay-${t}`,
        })
        children.push(child)
        if (dies) selfKilling.add(child)
        return child
      }
      const outcomes: string[] = []
      try {
        // two relays stand by while one leads (starting one takes a while); whichever takes the
        // lease over is the next to die
        const alive = [0, 1, 2].filter((t) => t < TRIALS).map(spawnRelay)
        let spawned = alive.length
        for (let t = 0; t < TRIALS; t++) {
          let child: Child | undefined
          await until(() => {
            child = alive.find((c) => c.lines.some((l) => l.startsWith('leader ')))
            return child !== undefined
          }, 'a relay taking the lease')
          const victim = child as Child
          alive.splice(alive.indexOf(victim), 1)
          if (spawned < TRIALS) alive.push(spawnRelay(spawned++))
          const lead = victim.lines.find((l) => l.startsWith('leader ')) as string
          outcomes.push(lead.split(' ')[2] as string)
          if (!selfKilling.has(victim)) {
            // kill it after it published something, a random while later: mid-publish, between a
            // publish and its checkpoint, or while it waits
            await victim.waitFor((l) => l.startsWith('published ') || l === 'lost', 'publishing')
            await new Promise((r) => setTimeout(r, Math.floor(random() * 60)))
            victim.proc.kill('SIGKILL')
          }
          if (victim.proc.exitCode === null && victim.proc.signalCode === null) {
            await once(victim.proc, 'exit').catch(() => undefined)
          }
        }
        writing = false
        await Promise.all(writers)
        // a last relay publishes the rest
        const relay = createChangeRelay({ log, transport, leaseTtl: 300, pollInterval: 10 })
        relay.start()
        try {
          const total = [...versions.values()].reduce((a, b) => a + b, 0)
          await until(() => got.length >= total, `${total} changes`)
          await sub.close()
          await consuming
          const expected = new Map(
            [...versions].map(([id, v]) => [`kill_core/${id}`, { from: 1, to: v }]),
          )
          expectSequences(got, expected)
          const stats = sub.stats()
          expect(stats.gapsUnresolved).toBe(0)
          // relays after the first took a dead relay's lease over (or, after a relay's error
          // released it, a free one)
          const takeovers = outcomes.filter((o) => o === 'takeover').length
          expect(takeovers).toBeGreaterThan(0)
          // the relays that died after a publish left batches their successors published again
          expect(stats.duplicates).toBeGreaterThan(0)
          console.log(
            `relay kills: ${TRIALS} trials (seed ${SEED}), ${takeovers} takeovers, ` +
              `${total} changes delivered once each, ` +
              `${stats.duplicates} duplicates dropped, ${stats.gapsBackfilled} gaps backfilled`,
          )
        } finally {
          await relay.close()
        }
      } catch (error) {
        throw new Error(`relay kill test failed with SEED=${SEED}: ${(error as Error).message}`, {
          cause: error,
        })
      } finally {
        writing = false
        for (const c of children) c.proc.kill('SIGKILL')
        await Promise.all(writers).catch(() => {})
        await changes.close()
        await transport.close()
      }
    },
    600_000 * LONG,
  )
})
