// PGlite boots in seconds on an idle machine and much slower on a loaded one: the test timeouts
// only bound a hang.
/**
 * `openEmbeddedStore`: PGlite with the tables, store, dead letters and change log in one call,
 * closed by one call; data kept in `dataDir` across a reopen; bad options refused before PGlite
 * is opened.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InvalidOptionError } from '@actor-cache/core'
import { afterAll, describe, expect, it } from 'vitest'
import { type EmbeddedStoreOptions, openEmbeddedStore } from '../src/client.js'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('openEmbeddedStore', () => {
  it('gives a migrated store, dead letters and change log, and closes them all', async () => {
    const embedded = await openEmbeddedStore()
    const ns = embedded.store.namespace<{ hp: number }>('primary_core')
    expect((await ns.set('actor:1', { hp: 5 })).version).toBe(1)
    expect((await ns.get('actor:1'))?.value).toEqual({ hp: 5 })
    expect(await embedded.deadLetters.list({ limit: 10 })).toEqual([])
    const rows = await embedded.prisma.$queryRawUnsafe<{ n: bigint }[]>(
      'SELECT count(*) AS n FROM ac_cache_entries',
    )
    expect(Number(rows[0]?.n)).toBe(1)
    await embedded.close()
    await embedded.close() // twice is fine
  }, 300_000)

  it('keeps the data in dataDir across a reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ac-embedded-'))
    dirs.push(dir)
    const first = await openEmbeddedStore({ dataDir: dir })
    await first.store.namespace<string>('n').set('k', 'kept')
    await first.close()
    const second = await openEmbeddedStore({ dataDir: dir })
    try {
      expect((await second.store.namespace<string>('n').get('k'))?.value).toBe('kept')
    } finally {
      await second.close()
    }
  }, 300_000)

  it('refuses bad options with a typed error before opening anything', async () => {
    const bad: unknown[] = [
      null,
      'dir',
      { dataDir: '' },
      { dataDir: 7 },
      { store: null },
      { store: { prisma: {} } },
    ]
    for (const options of bad) {
      await expect(openEmbeddedStore(options as EmbeddedStoreOptions)).rejects.toBeInstanceOf(
        InvalidOptionError,
      )
    }
  })
})
