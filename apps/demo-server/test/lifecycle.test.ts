import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_CONFIG_PATH } from '../src/settings.js'
import { StartupError } from '../src/startup-error.js'
import { as, startTestServer, tempDir } from './helpers.js'

let dir: { path: string; remove: () => Promise<void> }
beforeAll(async () => {
  dir = await tempDir()
})
afterAll(async () => {
  await dir?.remove()
})

/** Resources the process holds, counted by type. */
function resources(): Map<string, number> {
  const counts = new Map<string, number>()
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1)
  return counts
}

describe('lifecycle', () => {
  it('seeds once, closes to no more open handles than before it started', async () => {
    const before = resources()
    const lines: string[] = []
    const first = await startTestServer(join(dir.path, 'db'), { log: (l) => lines.push(l) })
    expect(lines.join('\n')).toMatch(/seeding .* 40\/40 actors \(40 new\)/)
    const res = await fetch(`${first.url}/actors/40`, { headers: as('player') })
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    await first.close()

    lines.length = 0
    const second = await startTestServer(join(dir.path, 'db'), { log: (l) => lines.push(l) })
    expect(lines.join('\n')).toMatch(/seeded before: nothing to add/)
    await second.close()
    // a moment for sockets closed by the peer to be released
    await new Promise((r) => setTimeout(r, 200))
    const left = [...resources()].filter(([type, n]) => n > (before.get(type) ?? 0))
    expect(left).toEqual([])
  })

  it('answers 429 with Retry-After once a principal spends its budget', async () => {
    const server = await startTestServer(join(dir.path, 'limited'), {
      seedActors: 2,
      adjust: (s) => ({ ...s, demo: { ...s.demo, rateLimit: { points: 3, duration: 60 } } }),
    })
    try {
      const statuses: number[] = []
      let limited: Awaited<ReturnType<typeof server.app.inject>> | undefined
      for (let i = 0; i < 6; i++) {
        const res = await server.app.inject({ url: '/actors/1', headers: as('player') })
        statuses.push(res.statusCode)
        if (res.statusCode === 429) limited = res
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200])
      expect(limited?.json()).toMatchObject({ code: 'E_RATE_LIMITED' })
      expect(Number(limited?.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    } finally {
      await server.close()
    }
  })
})

describe('start-up failures say what is wrong and how to fix it', () => {
  it('a port that is taken', async () => {
    const server = await startTestServer(join(dir.path, 'port-a'), { seedActors: 1 })
    const port = Number(new URL(server.url).port)
    try {
      const error = await startTestServer(join(dir.path, 'port-b'), { seedActors: 1, port }).catch(
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(StartupError)
      expect((error as StartupError).problem).toMatch(`port ${port} on 127.0.0.1 is taken`)
      expect((error as StartupError).fix).toMatch(/PORT=/)
    } finally {
      await server.close()
    }
  })

  it('a configuration file with a bad setting, named with its path', async () => {
    const { readFile } = await import('node:fs/promises')
    const text = (await readFile(DEFAULT_CONFIG_PATH, 'utf8')).replace(
      'ttl: 600s',
      'ttl: 600 seconds',
    )
    const path = join(dir.path, 'bad.yaml')
    await writeFile(path, text)
    const error = await startTestServer(join(dir.path, 'cfg'), { configPath: path }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StartupError)
    expect((error as Error).message).toMatch(`invalid cache configuration in ${path}`)
    expect((error as Error).message).toMatch(/strategies\.derived_stats\.ttl/)
    expect((error as StartupError).fix).toMatch(path)
  })

  it('a demo section with a token of an unknown role', async () => {
    const { readFile } = await import('node:fs/promises')
    const text = (await readFile(DEFAULT_CONFIG_PATH, 'utf8')).replace(
      'role: admin',
      'role: superuser',
    )
    const path = join(dir.path, 'bad-role.yaml')
    await writeFile(path, text)
    const error = await startTestServer(join(dir.path, 'cfg2'), { configPath: path }).catch(
      (e: unknown) => e,
    )
    expect((error as Error).message).toMatch(/demo\.tokens\.demo-admin-token\.role: unknown role/)
  })

  it('a database that cannot be reached', async () => {
    const error = await startTestServer(join(dir.path, 'unused'), {
      databaseUrl: 'postgresql://postgres@127.0.0.1:1/test',
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StartupError)
    expect((error as StartupError).problem).toMatch(
      /PostgreSQL at .*127\.0\.0\.1:1.* cannot be used/,
    )
    expect((error as StartupError).fix).toMatch(/start PostgreSQL.*or unset DATABASE_URL/)
  })

  it('a Redis that cannot be reached', async () => {
    const error = await startTestServer(join(dir.path, 'unused'), {
      redisUrl: 'redis://127.0.0.1:1',
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StartupError)
    expect((error as StartupError).problem).toMatch(
      /Redis at redis:\/\/127\.0\.0\.1:1.* is unreachable/,
    )
    expect((error as StartupError).fix).toMatch(/unset REDIS_URL/)
  })
})
