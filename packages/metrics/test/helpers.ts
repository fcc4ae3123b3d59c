/**
 * Real services for the tests: Redis at REDIS_URL (default 127.0.0.1:6379, a unique key prefix per
 * call) and Prometheus's promtool. A test that cannot reach one fails, naming what to start or install.
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AnyRedisClient } from '@actor-cache/redis'
import type * as NodeRedis from 'redis'

/**
 * node-redis as `@actor-cache/redis` resolves it. The tests' clients must come from that copy (a
 * user has one): the store tells Redis's error replies (NOSCRIPT, ...) by `instanceof ErrorReply`,
 * and pnpm gives this package a copy of its own, whose optional peer `@opentelemetry/api` resolves
 * to the version the OpenTelemetry tests need.
 */
const require = createRequire(import.meta.url)
const { createClient } = createRequire(require.resolve('@actor-cache/redis'))(
  'redis',
) as typeof NodeRedis

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A short unique id for key prefixes. */
export const uid = (): string => randomUUID().replaceAll('-', '').slice(0, 12)

/** A connected node-redis client. */
export async function redis(url = REDIS_URL): Promise<AnyRedisClient> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: 50, connectTimeout: 10_000 },
  })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `these tests need Redis at ${url} (start redis-server, or set REDIS_URL): ${(error as Error).message}`,
    )
  }
  return client as unknown as AnyRedisClient
}

/** Deletes every key under `prefix:` (test cleanup). */
export async function dropPrefix(client: AnyRedisClient, prefix: string): Promise<void> {
  const c = client as unknown as ReturnType<typeof createClient>
  for await (const keys of c.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length > 0) await c.unlink(keys)
  }
}

/** Polls `check` every 5 ms until it holds, or fails after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

export interface ToolResult {
  code: number
  output: string
}

/** Runs promtool with `args`, files given by name written to a temporary directory first. */
export async function promtool(
  args: (dir: string) => string[],
  files: Record<string, string> = {},
  stdin?: string,
): Promise<ToolResult> {
  const dir = await mkdtemp(join(tmpdir(), 'ac-metrics-'))
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
    return await new Promise<ToolResult>((resolve, reject) => {
      const child = execFile('promtool', args(dir), { cwd: dir }, (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(
            new Error(
              'these tests need promtool (Prometheus): install it with `apt-get install prometheus` (Debian) or put a Prometheus release on PATH',
            ),
          )
          return
        }
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output })
      })
      if (stdin !== undefined) child.stdin?.end(stdin)
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Value of the sample `name{labels}` in a Prometheus exposition (undefined when absent). */
export function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = Object.entries(labels)
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const got = new Map<string, string>()
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      got.set(pair[1] as string, pair[2] as string)
    }
    if (got.size === want.length && want.every(([k, v]) => got.get(k) === v)) return Number(m[3])
  }
  return undefined
}

/** Sum of every sample of `name` whose labels include `labels`. */
export function total(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  const want = Object.entries(labels)
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const got = new Map<string, string>()
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      got.set(pair[1] as string, pair[2] as string)
    }
    if (want.every(([k, v]) => got.get(k) === v)) sum += Number(m[3])
  }
  return sum
}
