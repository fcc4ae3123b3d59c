/**
 * Eight consumer processes (test/fixtures/stream-consumer.mjs), killed (SIGKILL) and started
 * again at random, follow 10,000 entities that two writer processes
 * (test/fixtures/stream-writer.mjs, each also running a relay candidate) change throughout.
 * Every consumer, each time it runs, sees every entity's versions as 1, 2, 3, ... with no gap
 * and no duplicate, and the ones alive at the end see every change. On the BUILT packages.
 */
import { once } from 'node:events'
import { LONG } from '@actor-cache/test-utils/property'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Child, spawnChild } from './child.js'
import { DATABASE_URL } from './logs.js'
import { openProcessStack, type ProcessStack, REDIS_URL, streamName, until } from './relay-stack.js'

const CONSUMERS = Number(process.env.CONSUMERS ?? 8)
const WRITERS = 2
const ENTITIES = 10_000
/** How long the writers write while consumers are killed and restarted (ms). */
const RUN_MS = 12_000 * LONG
const SEED = Number(process.env.SEED ?? Date.now() % 100_000)

const seenOf = (c: Child): number => {
  const line = c.lines.findLast((l) => l.startsWith('seen '))
  return line === undefined ? 0 : Number(line.slice(5))
}

describe('consumers killed and restarted under continuous writes (postgres, redis)', () => {
  let stack: ProcessStack
  beforeAll(async () => {
    stack = await openProcessStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  it(
    `gives each of ${CONSUMERS} consumers every version once, in order`,
    async () => {
      let seed = SEED
      const random = (): number => {
        seed = (seed * 1103515245 + 12345) >>> 0
        return seed / 2 ** 32
      }
      const env = {
        DATABASE_URL,
        SCHEMA: stack.schema,
        REDIS_URL,
        STREAM: streamName(`fanout${SEED}x`),
        SHARDS: '4',
        ENTITIES: String(ENTITIES),
        WRITERS: String(WRITERS),
      }
      const all: Child[] = []
      const spawn = (script: string, extra: Record<string, string> = {}): Child => {
        const child = spawnChild(script, { ...env, ...extra })
        all.push(child)
        return child
      }
      const consumer = (): Child => spawn('test/fixtures/stream-consumer.mjs')
      try {
        const writers = Array.from({ length: WRITERS }, (_, i) =>
          spawn('test/fixtures/stream-writer.mjs', { INDEX: String(i), SEED: String(SEED + i) }),
        )
        const consumers = Array.from({ length: CONSUMERS }, consumer)
        await Promise.all(
          [...writers, ...consumers].map((c) => c.waitFor((l) => l === 'ready', 'ready')),
        )
        let kills = 0
        const until_ = Date.now() + RUN_MS
        while (Date.now() < until_) {
          await new Promise((r) => setTimeout(r, 300 + Math.floor(random() * 700)))
          const k = Math.floor(random() * CONSUMERS)
          const victim = consumers[k] as Child
          victim.proc.kill('SIGKILL')
          await once(victim.proc, 'exit').catch(() => undefined)
          kills++
          consumers[k] = consumer()
        }
        for (const w of writers) w.proc.send('stop')
        const done = await Promise.all(
          writers.map((w) => w.waitFor((l) => l.startsWith('done '), 'done')),
        )
        const total = done.reduce((sum, l) => sum + Number(l.slice(5)), 0)
        const rows = await stack.db.prisma.$queryRawUnsafe<{ n: bigint }[]>(
          `SELECT count(*) AS n FROM ac_state_changes WHERE entity_type = 'fanout_core'`,
        )
        expect(Number(rows[0]?.n)).toBe(total)
        await until(
          () => consumers.every((c) => seenOf(c) >= total),
          `every consumer at ${total}`,
        ).catch(async (error: Error) => {
          for (const c of consumers) c.proc.send('stats')
          await new Promise((r) => setTimeout(r, 500))
          const stats = consumers.map((c) => c.lines.findLast((l) => l.startsWith('stats ')))
          for (const w of writers) stats.push(w.lines.findLast((l) => l.startsWith('relay ')))
          throw new Error(
            `${error.message}; seen: ${consumers.map(seenOf).join(', ')}\n${stats.join('\n')}`,
          )
        })
        const bad = all.flatMap((c) => c.lines.filter((l) => l.startsWith('bad ')))
        expect(bad).toEqual([])
        expect(consumers.map(seenOf)).toEqual(consumers.map(() => total))
        console.log(
          `consumers: ${CONSUMERS} over ${ENTITIES} entities, ${kills} kills and restarts ` +
            `(seed ${SEED}), ${total} changes from ${WRITERS} writer processes, each seen once, in order`,
        )
      } catch (error) {
        throw new Error(`consumer test failed with SEED=${SEED}: ${(error as Error).message}`, {
          cause: error,
        })
      } finally {
        for (const c of all) c.proc.kill('SIGKILL')
      }
    },
    480_000 * LONG,
  )
})
