import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type DemoServer, type DemoServerOptions, startDemoServer } from '../src/app.js'

/** The demo tokens of the shipped configuration, by role. */
export const TOKENS = {
  player: 'demo-player-token',
  gm: 'demo-gm-token',
  admin: 'demo-admin-token',
} as const

/** The Authorization header of a role's demo token. */
export const as = (role: keyof typeof TOKENS): { authorization: string } => ({
  authorization: `Bearer ${TOKENS[role]}`,
})

/** A temporary directory, removed by the returned function. */
export async function tempDir(): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'demo-server-test-'))
  return { path, remove: () => rm(path, { recursive: true, force: true }) }
}

/** A server on a free port over embedded PGlite in `dataDir`, with few actors. */
export function startTestServer(
  dataDir: string,
  options: DemoServerOptions = {},
): Promise<DemoServer> {
  return startDemoServer({ port: 0, dataDir, seedActors: 40, logger: false, ...options })
}
