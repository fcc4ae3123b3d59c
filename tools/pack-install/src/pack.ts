import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from './command.js'

/** A package as published: its packed manifest and tarball. */
export interface PackedPackage {
  readonly name: string
  readonly version: string
  readonly tarball: string
  readonly peerDependencies: Readonly<Record<string, string>>
  readonly optionalPeers: ReadonlySet<string>
}

interface Manifest {
  name: string
  version: string
  private?: boolean
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

/** Directories under `packages/` whose package is published (not `private`). */
export async function publishableDirs(root: string): Promise<string[]> {
  const dirs: string[] = []
  for (const entry of await readdir(join(root, 'packages'), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue
    const dir = join(root, 'packages', entry.name)
    let manifest: Manifest
    try {
      manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Manifest
    } catch {
      continue
    }
    if (!manifest.private) dirs.push(dir)
  }
  return dirs.sort()
}

/**
 * `pnpm pack` of one package into `destination`, as `pnpm publish` would build it (`workspace:`
 * ranges replaced by versions). Peers are read from the packed manifest: what users get.
 */
export async function pack(dir: string, destination: string): Promise<PackedPackage> {
  const { stdout } = await run('pnpm', ['pack', '--pack-destination', destination, '--json'], {
    cwd: dir,
  })
  const { filename } = JSON.parse(stdout) as { filename: string }
  const { stdout: packed } = await run('tar', ['-xzOf', filename, 'package/package.json'], {
    cwd: destination,
  })
  const manifest = JSON.parse(packed) as Manifest
  if (JSON.stringify(manifest).includes('workspace:')) {
    throw new Error(`${manifest.name}: the packed package.json still has a workspace: range`)
  }
  const meta = manifest.peerDependenciesMeta ?? {}
  return {
    name: manifest.name,
    version: manifest.version,
    tarball: filename,
    peerDependencies: manifest.peerDependencies ?? {},
    optionalPeers: new Set(Object.keys(meta).filter((name) => meta[name]?.optional)),
  }
}
