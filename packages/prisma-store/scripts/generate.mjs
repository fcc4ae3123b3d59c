// Runs `prisma generate` offline: the CLI wants a native schema engine it never uses for
// generation, so point it at any existing file unless the caller provided one.
import { spawnSync } from 'node:child_process'

const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' }
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath
const result = spawnSync('prisma', ['generate', '--schema', 'prisma/schema.prisma'], {
  env,
  stdio: 'inherit',
  shell: process.platform === 'win32',
})
process.exit(result.status ?? 1)
