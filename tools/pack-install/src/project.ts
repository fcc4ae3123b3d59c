import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CommandError, cleanEnv, run } from './command.js'
import type { PackedPackage } from './pack.js'

/** Files of the user's project, copied into every temporary project. */
export const PROJECT_FILES = ['full-stack.ts', 'tsconfig.json'] as const

/** A new npm project (type: module) depending on the tarballs, the peers and TypeScript. */
export async function createProject(options: {
  dir: string
  template: string
  packages: readonly PackedPackage[]
  dependencies: Readonly<Record<string, string>>
  devDependencies: Readonly<Record<string, string>>
}): Promise<void> {
  await mkdir(options.dir, { recursive: true })
  const tarballs = Object.fromEntries(options.packages.map((p) => [p.name, `file:${p.tarball}`]))
  const manifest = {
    name: 'actor-cache-first-contact',
    version: '1.0.0',
    private: true,
    type: 'module',
    dependencies: { ...tarballs, ...options.dependencies },
    devDependencies: options.devDependencies,
    // every @actor-cache/* dependency of the packages resolves to its tarball, never the registry
    overrides: Object.fromEntries(options.packages.map((p) => [p.name, `$${p.name}`])),
    // Prisma's CLI and engines download native binaries in their install scripts; nothing here
    // needs them (the shipped client runs on WASM), so they stay denied should they appear.
    allowScripts: { prisma: false, '@prisma/engines': false },
  }
  await writeFile(join(options.dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  // an install script nobody reviewed fails the install instead of running
  await writeFile(join(options.dir, '.npmrc'), 'strict-allow-scripts=true\n')
  for (const file of PROJECT_FILES) {
    await copyFile(join(options.template, file), join(options.dir, file))
  }
}

/** `npm install` in `dir`, quietly (output only on failure). */
export async function npmInstall(dir: string, args: readonly string[] = []): Promise<void> {
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...args], {
    cwd: dir,
  })
}

/** Versions installed in the project, for `names`, and problems `npm ls` reports. */
export async function installedVersions(
  dir: string,
  names: readonly string[],
): Promise<{ versions: Map<string, string>; problems: string[] }> {
  const result = await run('npm', ['ls', '--all', '--json'], { cwd: dir, allowFailure: true })
  const tree = JSON.parse(result.stdout) as LsNode & { problems?: string[] }
  const versions = new Map<string, string>()
  const copies = new Map<string, Set<string>>()
  const visit = (node: LsNode) => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      if (child.version) {
        const seen = copies.get(name) ?? new Set()
        seen.add(child.version)
        copies.set(name, seen)
      }
      visit(child)
    }
  }
  visit(tree)
  for (const name of names) {
    const top = tree.dependencies?.[name]?.version
    if (top) versions.set(name, top)
  }
  const problems = [...(tree.problems ?? [])]
  for (const [name, seen] of copies) {
    if (name.startsWith('@actor-cache/') && seen.size > 1) {
      problems.push(`${name} is installed in several versions: ${[...seen].join(', ')}`)
    }
  }
  return { versions, problems }
}

interface LsNode {
  version?: string
  dependencies?: Record<string, LsNode>
}

/** What a TypeScript version's install came to. */
export type TypeScriptInstall =
  | { readonly ok: true; readonly spec: string; readonly version: string; readonly tsc: string }
  | { readonly ok: false; readonly spec: string; readonly reason: string }

/**
 * Installs `typescript@<spec>` in a directory of its own. A version npm cannot find (ETARGET,
 * E404) is reported, not thrown; any other failure is thrown.
 */
export async function installTypeScript(spec: string, dir: string): Promise<TypeScriptInstall> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), '{ "private": true }\n')
  try {
    await npmInstall(dir, [`typescript@${spec}`])
  } catch (error) {
    if (error instanceof CommandError && /code (ETARGET|E404)/.test(error.result.stderr)) {
      return { ok: false, spec, reason: `npm cannot find typescript@${spec}` }
    }
    throw error
  }
  const { stdout } = await run(join(dir, 'node_modules/.bin/tsc'), ['--version'], {
    cwd: dir,
    env: cleanEnv(),
  })
  return {
    ok: true,
    spec,
    version: stdout.trim().replace(/^Version /, ''),
    tsc: join(dir, 'node_modules/.bin/tsc'),
  }
}

/** Runs `tsc -p tsconfig.json` (plus `args`) in the project; throws with the diagnostics. */
export async function typecheck(
  tsc: string,
  project: string,
  args: readonly string[] = [],
): Promise<void> {
  await run(tsc, ['-p', join(project, 'tsconfig.json'), ...args], { cwd: project })
}
