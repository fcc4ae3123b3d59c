/**
 * PostgreSQL crashing under load, on a cluster of this file's own (see pg-cluster.ts). To make
 * statements be in flight when the server dies, the server is first frozen (SIGSTOP): the
 * statements sent meanwhile stay unread in its sockets, so the kill (SIGKILL to every server
 * process) makes the kernel reset those connections, and Prisma reports "Server has closed the
 * connection." (`ConnectionClosed`). Other cycles use `pg_ctl stop -m immediate`.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { ActorCacheError } from '@actor-cache/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { classifyFailure } from '../src/classify-error.js'
import { connectPostgres, type PrismaClient } from '../src/client.js'
import { createPrismaStore, migrate } from '../src/index.js'
import { PgCluster, poll, waitFor } from './pg-cluster.js'

/** Bounds on waits for the server, all generous: they only stop a broken run from hanging. */
const BOUND = 120_000
const WORKERS = 4
/** set, setMany, get, exists, cas */
const OPS = 5

function adapterKind(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown }).cause
  return (cause as { meta?: { driverAdapterError?: { cause?: { kind?: string } } } })?.meta
    ?.driverAdapterError?.cause?.kind
}

/**
 * The server went away under a statement: Prisma's adapter says `ConnectionClosed`; a statement
 * sent straight through the adapter's `pg` pool (single-row calls) gets `pg`'s own error.
 */
function closedUnderStatement(error: unknown): boolean {
  if (adapterKind(error) === 'ConnectionClosed') return true
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause
  return (
    cause?.code === 'ECONNRESET' ||
    /Connection terminated unexpectedly/i.test(String(cause?.message ?? ''))
  )
}

describe('a PostgreSQL server that crashes under load', () => {
  let cluster: PgCluster
  let prisma: PrismaClient
  beforeAll(async () => {
    cluster = await PgCluster.create()
    prisma = await connectPostgres(cluster.url, {
      max: 2 * WORKERS,
      // long bounds: the failures under test must be the crash's, not a deadline's
      connectionTimeoutMillis: BOUND,
      statementTimeout: BOUND,
    })
    await migrate(prisma)
  }, BOUND)
  afterAll(async () => {
    await prisma?.$disconnect()
    await cluster?.destroy()
  }, BOUND)

  it(
    'fails a statement in flight with ConnectionClosed, which counts as unavailable',
    async () => {
      await prisma.$queryRawUnsafe('SELECT 1') // a pooled connection, so the query is sent at once
      await cluster.freeze()
      const inFlight = prisma.$queryRawUnsafe('SELECT 1').catch((e: unknown) => e)
      await waitFor('the statement reaches the server', () => cluster.unreadConnections() >= 1)
      await cluster.kill()
      const error = await inFlight
      expect(error).toMatchObject({ code: 'P2010' })
      expect(adapterKind({ cause: error })).toBe('ConnectionClosed')
      expect(classifyFailure(error)).toBe('unavailable')
      await cluster.start()
    },
    2 * BOUND,
  )

  it(
    'gives callers only E_TIER_UNAVAILABLE, never replays a batch row by row, and recovers',
    async () => {
      const store = createPrismaStore({ prisma, timeout: BOUND }).namespace<number>('crash')
      // every batch below is versioned with distinct keys: one statement, no transaction. A
      // transaction is the row-by-row replay of a batch taken for refused.
      const transactions = vi.spyOn(prisma, '$transaction')
      const errors: { op: string; error: unknown }[] = []
      const done = new Array<number>(WORKERS).fill(0)
      let version = 0
      let stop = false

      const worker = async (w: number): Promise<void> => {
        const ops: [string, () => Promise<unknown>][] = [
          ['set', () => store.set(`set-${w}`, w)],
          [
            'setMany',
            () =>
              store.setMany(
                Array.from({ length: 20 }, (_, i) => ({
                  key: `batch-${w}-${i}`,
                  value: i,
                  version: ++version,
                })),
              ),
          ],
          ['get', () => store.get(`set-${w}`)],
          ['exists', () => store.exists(`set-${w}`)],
          [
            'cas',
            async () => {
              // this worker is the key's only writer: the version read is the one to expect
              const current = await store.get(`cas-${w}`)
              await store.set(`cas-${w}`, w, { expectedVersion: current?.version ?? 0 })
            },
          ],
        ]
        while (!stop) {
          for (const [op, run] of ops) {
            try {
              await run()
              done[w] = (done[w] ?? 0) + 1
            } catch (error) {
              errors.push({ op, error })
              await sleep(20) // no busy loop against a refused port
            }
          }
        }
      }
      const running = Array.from({ length: WORKERS }, (_, w) => worker(w))
      const progress = async (): Promise<void> => {
        const before = [...done]
        await waitFor(
          'every worker writes',
          () => done.every((n, w) => n > (before[w] ?? 0)),
          BOUND,
        )
      }

      try {
        for (const crash of ['kill', 'immediate', 'kill', 'immediate']) {
          await progress()
          const failed = errors.length
          if (crash === 'kill') {
            await cluster.freeze()
            // A statement waiting unread in the server is reset by the kill: ConnectionClosed.
            await waitFor('a statement in flight', () => cluster.unreadConnections() >= 1, BOUND)
            // Most often every worker's is; not always: a backend stopped in the middle of a
            // statement has read it, and its worker waits for an answer instead.
            await poll(() => cluster.unreadConnections() >= WORKERS, 5_000)
            await cluster.kill()
          } else {
            await cluster.stopImmediate()
          }
          // every kind of call meets the outage before the server comes back
          await waitFor(
            'every operation fails',
            () => new Set(errors.slice(failed).map((e) => e.op)).size === OPS,
            BOUND,
          )
          await cluster.start()
        }
        await progress()
      } finally {
        stop = true
        await Promise.all(running)
      }

      const raw = errors.filter((e) => !(e.error instanceof ActorCacheError))
      expect(raw.map((e) => `${e.op}: ${String(e.error)}`)).toEqual([])
      const other = errors.filter((e) => (e.error as ActorCacheError).code !== 'E_TIER_UNAVAILABLE')
      expect(other.map((e) => `${e.op}: ${String(e.error)}`)).toEqual([])
      for (const { error } of errors) {
        expect(error).toMatchObject({ tier: 'postgres' })
        expect((error as Error).cause).toBeDefined()
      }
      // the crashes hit statements in flight, and batches among them
      expect(errors.some((e) => closedUnderStatement(e.error))).toBe(true)
      expect(errors.some((e) => e.op === 'setMany')).toBe(true)
      expect(transactions).not.toHaveBeenCalled()

      // the same client and store work again
      expect((await store.set('after', 1)).applied).toBe(true)
      expect((await store.get('after'))?.value).toBe(1)
      expect(await store.exists('after')).toBe(true)
      const v = ++version
      expect(await store.setMany([{ key: 'after-batch', value: 2, version: v }])).toEqual([
        { applied: true, version: v },
      ])
      const current = (await store.get('after'))?.version ?? 0
      expect(await store.set('after', 3, { expectedVersion: current })).toEqual({
        applied: true,
        version: current + 1,
      })
    },
    10 * BOUND,
  )
})
