import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { jsonSerializer } from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import {
  createPrismaChangeLog,
  createPrismaStore,
  type PrismaTier,
} from '@actor-cache/prisma-store'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type ConflictPolicy,
  createStateTracker,
  type StateTracker,
  trackAs,
} from '../src/index.js'
import { mergeByRules } from '../src/merge.js'
import { DATABASE_URL, openDatabase, type TestDatabase } from './logs.js'

interface Hero {
  gold: number
  level?: number
  buffs?: string[]
  name?: string
}

describe('conflict policies of tracked namespaces (pglite)', () => {
  let db: TestDatabase
  let l1: MemCache
  let l3: PrismaTier
  let tracker: StateTracker
  let cache: TieredCache
  beforeAll(async () => {
    db = await openDatabase('pglite')
    tracker = createStateTracker({
      log: createPrismaChangeLog({ prisma: db.prisma }),
      systemId: 'test',
    })
    l1 = createMemCache({ maxSize: 8 * 1024 * 1024 })
    l3 = createPrismaStore({ prisma: db.prisma })
    const policies: Record<string, ConflictPolicy> = {
      rejecting: 'reject',
      lww: 'last_writer_wins',
      merged: { merge: { gold: 'counter', level: 'max', buffs: 'union' } },
      custom: {
        merge: (_base, mine, theirs) => ({
          ...(theirs as Hero),
          ...(mine as Hero),
          name: 'merged',
        }),
      },
    }
    cache = createTieredCache({
      l1,
      l3,
      tracking: tracker.writeTracking(
        Object.fromEntries(Object.entries(policies).map(([n, conflicts]) => [n, { conflicts }])),
      ),
    })
  })
  afterAll(async () => {
    await cache?.close()
    await l1?.close()
    await l3?.close()
    await db?.close()
  })

  /** Two writers both read version 1, then write one after the other. */
  async function race(ns: string, first: Hero, second: Hero) {
    const n = cache.namespace<Hero>(ns)
    return trackAs({ userId: 'u' }, async () => {
      await n.set(
        'hero',
        { gold: 100, level: 1, buffs: ['start'], name: 'base' },
        { expectedVersion: 0 },
      )
      await n.set('hero', first, { expectedVersion: 1 })
      return n.set('hero', second, { expectedVersion: 1 }).then(
        async (r) => ({ result: r, value: await n.get('hero') }),
        (error: unknown) => ({ error }),
      )
    })
  }

  it('reject: the second writer gets E_CONFLICT, nothing logged for it', async () => {
    const out = await race('rejecting', { gold: 110 }, { gold: 95 })
    expect(out).toMatchObject({
      error: { code: 'E_CONFLICT', expectedVersion: 1, actualVersion: 2 },
    })
    expect((await tracker.history('rejecting', 'hero')).map((r) => r.version)).toEqual([1, 2])
  })

  it('last_writer_wins: the second write applies over the first, which stays in the log', async () => {
    const out = await race('lww', { gold: 110 }, { gold: 95 })
    expect(out).toMatchObject({ result: { version: 3 }, value: { gold: 95 } })
    const history = await tracker.history('lww', 'hero')
    expect(history[2]).toMatchObject({ oldValue: { gold: 110 }, newValue: { gold: 95 } })
  })

  it('merge by field rules: counters add, max wins, sets unite, untouched fields kept', async () => {
    const out = await race(
      'merged',
      { gold: 110, level: 2, buffs: ['start', 'haste'], name: 'base' },
      { gold: 95, level: 3, buffs: ['start', 'shield'], name: 'base' },
    )
    expect(out).toMatchObject({
      result: { version: 3 },
      value: { gold: 105, level: 3, buffs: ['start', 'haste', 'shield'], name: 'base' },
    })
    const merged = (await tracker.history('merged', 'hero'))[2]
    expect(merged).toMatchObject({
      changeType: 'update',
      oldValue: { gold: 110 },
      newValue: { gold: 105 },
    })
    expect((await tracker.verify('merged', 'hero')).ok).toBe(true)
  })

  it('merge: a field both changed with no rule is a conflict naming it', async () => {
    const n = cache.namespace<Hero>('merged')
    await trackAs({ userId: 'u' }, async () => {
      const v = (await n.getEntry('hero'))?.version ?? 0
      await n.set('hero', { gold: 105, name: 'ann' }, { expectedVersion: v })
      await expect(
        n.set('hero', { gold: 105, name: 'bob' }, { expectedVersion: v }),
      ).rejects.toMatchObject({
        code: 'E_CONFLICT',
        message: expect.stringContaining('"name" changed on both sides'),
      })
    })
  })

  it('merge by a function of base, mine and theirs', async () => {
    const out = await race('custom', { gold: 1 }, { gold: 2, level: 9 })
    expect(out).toMatchObject({ value: { gold: 2, level: 9, name: 'merged' } })
  })

  it('adds up counters that both sides moved by the same delta; other equal changes are one value', () => {
    const rules = { gold: 'counter', level: 'max' } as const
    expect(
      mergeByRules(
        { gold: 5, level: 1 },
        { gold: 6, level: 2 },
        { gold: 6, level: 2 },
        rules,
        jsonSerializer,
      ),
    ).toEqual({
      ok: true,
      value: { gold: 7, level: 2 },
    })
    expect(mergeByRules({ name: 'a' }, { name: 'b' }, { name: 'b' }, {}, jsonSerializer)).toEqual({
      ok: true,
      value: { name: 'b' },
    })
    expect(mergeByRules({ gold: 1 }, { gold: 'x' }, { gold: 2 }, rules, jsonSerializer)).toEqual({
      ok: false,
      fields: ['gold'],
    })
  })

  it('rejects malformed policies before any I/O', () => {
    expect(() => tracker.writeTracking({ a: { conflicts: 'merge' as never } })).toThrow(
      /namespaces.a.conflicts/,
    )
    expect(() =>
      tracker.writeTracking({ a: { conflicts: { merge: { gold: 'sum' as never } } } }),
    ).toThrow(/namespaces.a.conflicts.merge.gold/)
  })
})

const here = dirname(fileURLToPath(import.meta.url))
const WRITER = resolve(here, 'fixtures/conflict-writer.mjs')
const INCREMENTS = 60

for (const policy of ['reject', 'merge'] as const) {
  describe(`two processes increment the same actors under ${policy} (postgres)`, () => {
    let db: TestDatabase
    beforeAll(async () => {
      db = await openDatabase('postgres')
    })
    afterAll(async () => {
      await db?.close()
    })

    it('loses no acknowledged update, and every actor is the replay of its log', async () => {
      const schema =
        (await db.prisma.$queryRawUnsafe<{ s: string }[]>('SELECT current_schema() AS s'))[0]?.s ??
        ''
      const acks = new Map<string, number>()
      const children = ['a', 'b'].map((name) => {
        const proc = spawn(process.execPath, [WRITER], {
          cwd: resolve(here, '..'),
          env: {
            ...process.env,
            DATABASE_URL,
            SCHEMA: schema,
            POLICY: policy,
            INCREMENTS: String(INCREMENTS),
            NAME: `writer-${name}`,
          },
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        })
        const lines: string[] = []
        proc.on('message', (m) => {
          const line = String(m)
          lines.push(line)
          if (line === 'ready') proc.send('go')
          const actor = /^ack (\S+)$/.exec(line)?.[1]
          if (actor) acks.set(actor, (acks.get(actor) ?? 0) + 1)
        })
        return { proc, lines }
      })
      await Promise.all(children.map((c) => once(c.proc, 'exit')))
      for (const c of children) {
        expect(c.lines.filter((l) => l.startsWith('error'))).toEqual([])
        expect(c.lines.at(-1)).toBe('done')
      }
      const tracker = createStateTracker({ log: createPrismaChangeLog({ prisma: db.prisma }) })
      const rows = createPrismaStore({ prisma: db.prisma }).namespace<Hero>('primary_core')
      let total = 0
      for (const [actor, count] of acks) {
        total += count
        const stored = await rows.get(actor)
        // every acknowledged increment is in the value
        expect(stored?.value.gold, actor).toBe(count)
        const verified = await tracker.verify('primary_core', actor, {
          stored: { exists: true, value: stored?.value, version: stored?.version },
        })
        expect(verified.ok ? 'ok' : `${verified.reason}: ${verified.detail}`).toBe('ok')
        expect(
          (await tracker.getStateAt('primary_core', actor, { version: stored?.version ?? 0 }))
            .exists,
        ).toBe(true)
      }
      expect(total).toBe(2 * INCREMENTS)
    }, 300_000)
  })
}
