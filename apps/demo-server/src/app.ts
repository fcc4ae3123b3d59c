import { InvalidConfigError } from '@actor-cache/core'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { PurgeHook } from './http/response-purge.js'
import { buildHttp } from './http/server.js'
import { type SeedProgress, seedRecord } from './seed.js'
import { DEFAULT_CONFIG_PATH, loadSettings, type ServerSettings } from './settings.js'
import { openStack, type Stack } from './stack.js'
import { StartupError, step } from './startup-error.js'

/** Where PGlite keeps the data by default: `.data/` in the app's directory (git-ignored). */
export const DEFAULT_DATA_DIR: string = new URL('../.data/', import.meta.url).pathname

/** Options of {@link startDemoServer}; `main.ts` fills them from the environment. */
export interface DemoServerOptions {
  /** The YAML file. @default the one shipped in `config/` */
  configPath?: string
  /** Variables for `${NAME}` in the file. @default process.env */
  env?: Readonly<Record<string, string | undefined>>
  /** Changes the settings read from the file (tests: a smaller rate limit). */
  adjust?: (settings: ServerSettings) => ServerSettings
  /** @default 3000; 0 picks a free port */
  port?: number
  /** @default 127.0.0.1 */
  host?: string
  /** PGlite's directory, without `databaseUrl`. @default {@link DEFAULT_DATA_DIR} */
  dataDir?: string
  redisUrl?: string | undefined
  databaseUrl?: string | undefined
  /** Actors to seed. @default the file's `demo.seed_actors` */
  seedActors?: number
  /** Fastify's pino logger. @default false */
  logger?: FastifyServerOptions['logger']
  /**
   * Called with the tags of every purge of the response cache: where a CDN purge call goes.
   * @default none: purges are logged (debug)
   */
  onPurge?: PurgeHook
  /** Start-up progress lines (seeding, tiers). @default none */
  log?: (line: string) => void
}

/** A running demo server. */
export interface DemoServer {
  /** `http://host:port`. */
  readonly url: string
  readonly app: FastifyInstance
  readonly stack: Stack
  /** Stops taking requests, finishes those under way, then closes the stack. */
  close(): Promise<void>
}

async function settingsOf(options: DemoServerOptions): Promise<ServerSettings> {
  const path = options.configPath ?? DEFAULT_CONFIG_PATH
  try {
    const settings = await loadSettings(path, options.env ?? process.env)
    return options.adjust === undefined ? settings : options.adjust(settings)
  } catch (error) {
    if (error instanceof InvalidConfigError) {
      throw new StartupError(error.message, `correct the settings listed above in ${path}`, error)
    }
    throw new StartupError(
      `the configuration file ${path} cannot be read: ${(error as Error).message}`,
      'check the path (DEMO_CONFIG), or unset DEMO_CONFIG to use the shipped file',
      error,
    )
  }
}

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width)
  return '█'.repeat(full) + '░'.repeat(width - full)
}

async function seed(stack: Stack, count: number, log: (line: string) => void): Promise<void> {
  let lastShown = 0
  const progress = (p: SeedProgress): void => {
    if (p.done - lastShown < 500 && p.done < p.total) return
    lastShown = p.done
    log(`  seeding ${bar(p.done / p.total)} ${p.done}/${p.total} actors (${p.created} new)`)
  }
  const done = await step(
    (e) => `seeding the store of record failed: ${(e as Error).message}`,
    'check that the database is reachable and writable; SEED_ACTORS=0 skips seeding',
    () => seedRecord(stack.record.store, stack.tracking, count, progress),
  )
  if (done.created === 0) log(`  ${count} actors were seeded before: nothing to add`)
}

async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  try {
    return await app.listen({ host, port })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') {
      throw new StartupError(
        `port ${port} on ${host} is taken (another demo server?)`,
        `stop the process using it, or choose another port: PORT=${port + 1} pnpm demo`,
        error,
      )
    }
    throw new StartupError(
      `cannot listen on ${host}:${port}: ${(error as Error).message}`,
      'set HOST and PORT to an address of this machine and a free port',
      error,
    )
  }
}

/**
 * Starts the demo server: reads the configuration, opens the tiers the options ask for (embedded
 * PGlite and in-process ports by default), seeds the actors that are missing, and listens.
 * @throws {StartupError} saying what is wrong and how to fix it
 */
export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const log = options.log ?? (() => {})
  const settings = await settingsOf(options)
  const stack = await openStack({
    settings,
    dataDir: options.dataDir ?? DEFAULT_DATA_DIR,
    redisUrl: options.redisUrl,
    databaseUrl: options.databaseUrl,
    onAlert: log,
    env: options.env ?? process.env,
  })
  let app: FastifyInstance | undefined
  try {
    log(`tiers: L1 ${stack.tiers.l1}; L2 ${stack.tiers.l2}; record ${stack.tiers.record}`)
    if (stack.encryption !== undefined) log(`encryption keys: ${stack.encryption.keySource}`)
    await seed(stack, options.seedActors ?? settings.demo.seedActors, log)
    app = await buildHttp(stack, { logger: options.logger ?? false, onPurge: options.onPurge })
    const url = await listen(app, options.host ?? '127.0.0.1', options.port ?? 3000)
    const running = app
    let closing: Promise<void> | undefined
    return {
      url,
      app: running,
      stack,
      close() {
        closing ??= running.close().finally(() => stack.close())
        return closing
      },
    }
  } catch (error) {
    await app?.close()
    await stack.close()
    throw error
  }
}
