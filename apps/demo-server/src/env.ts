import type { DemoServerOptions } from './app.js'
import { StartupError } from './startup-error.js'

function integer(
  env: NodeJS.ProcessEnv,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new StartupError(
      `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
      `set ${name} to such a number, or unset it`,
    )
  }
  return value
}

const set = (value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : value

/** The server's options from environment variables (README: "Environment variables"). */
export function optionsFromEnv(env: NodeJS.ProcessEnv): DemoServerOptions {
  const options: DemoServerOptions = {
    env,
    host: set(env.HOST) ?? '127.0.0.1',
    port: integer(env, 'PORT', 0, 65535) ?? 3000,
    redisUrl: set(env.REDIS_URL),
    databaseUrl: set(env.DATABASE_URL),
    logger: { level: set(env.LOG_LEVEL) ?? 'info' },
  }
  const configPath = set(env.DEMO_CONFIG)
  if (configPath !== undefined) options.configPath = configPath
  const dataDir = set(env.DATA_DIR)
  if (dataDir !== undefined) options.dataDir = dataDir
  const seedActors = integer(env, 'SEED_ACTORS', 0, 1_000_000)
  if (seedActors !== undefined) options.seedActors = seedActors
  return options
}
