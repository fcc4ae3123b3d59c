// Tries the published packages as a user does: packs every publishable package, installs the
// tarballs with npm into a new project twice (peers at the lowest and at the latest versions
// their ranges allow), compiles a full-stack program there with the installed TypeScript (and
// typechecks it with other TypeScript versions), and runs it on the real Redis and PostgreSQL:
// it must pass its checks, close to zero active handles and exit by itself.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { cleanEnv } from './command.js'
import { seconds, step } from './log.js'
import { type PackedPackage, pack, publishableDirs } from './pack.js'
import { type PeerVersions, resolvePeers } from './peers.js'
import {
  createProject,
  installedVersions,
  installTypeScript,
  npmInstall,
  type TypeScriptInstall,
  typecheck,
} from './project.js'
import { runProgram } from './run-program.js'
import {
  checkServices,
  clearPrefix,
  type Services,
  servicesFromEnv,
  withSchema,
} from './services.js'

/** Optional peers the program uses, so they are installed too. */
const PROGRAM_OPTIONAL_PEERS = new Map([['@prisma/adapter-pg', 'connectPostgres']])
/** TypeScript versions the program is also typechecked with, besides the workspace's. */
const OTHER_TYPESCRIPTS = ['5.9', '7']
/** Only so that a program that never exits fails instead of hanging: not a timing assertion. */
const DEADLINE_MS = Number(process.env.PACK_INSTALL_DEADLINE ?? 120_000)

const here = resolve(import.meta.dirname, '..')
const root = resolve(here, '../..')
const failures: string[] = []

const started = performance.now()
const services = servicesFromEnv()
await checkServices(services)
const tmp = await mkdtemp(join(tmpdir(), 'actor-cache-pack-install-'))
try {
  await main(tmp, services)
} catch (error) {
  failures.push(error instanceof Error ? (error.stack ?? error.message) : String(error))
}
console.log(`pack-install: ${seconds(performance.now() - started)} in all`)
if (failures.length > 0) {
  console.error(`\npack-install FAILED (files kept in ${tmp}):`)
  for (const failure of failures) console.error(`- ${failure}`)
  process.exitCode = 1
} else if (process.env.KEEP_PACK_INSTALL) {
  console.log(`files kept in ${tmp}`)
} else {
  await rm(tmp, { recursive: true, force: true })
}

async function main(tmp: string, services: Services): Promise<void> {
  const rootManifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>
  }
  const workspaceTypeScript = rootManifest.devDependencies.typescript
  const nodeTypes = rootManifest.devDependencies['@types/node']
  if (!workspaceTypeScript || !nodeTypes) {
    throw new Error('the root package.json pins no typescript or @types/node')
  }

  const dirs = await packagesToPack()
  let s = step('packing')
  const packs = join(tmp, 'packs')
  await mkdir(packs)
  const packages: PackedPackage[] = []
  for (const dir of dirs) packages.push(await pack(dir, packs))
  s.done(packages.map((p) => `${p.name}@${p.version}`).join(', '))

  s = step('resolving peer versions')
  const { peers, skipped } = await resolvePeers(packages, PROGRAM_OPTIONAL_PEERS, tmp)
  s.done()
  for (const peer of peers) {
    console.log(`  ${peer.name} ${peer.range}: lowest ${peer.lowest}, latest ${peer.latest}`)
    if (peer.note) console.log(`    note: ${peer.note}`)
  }
  for (const peer of skipped)
    console.log(`  ${peer.name} ${peer.range}: not installed (${peer.reason})`)

  s = step(`installing typescript ${OTHER_TYPESCRIPTS.join(', ')} for typechecks`)
  const others: TypeScriptInstall[] = await Promise.all(
    OTHER_TYPESCRIPTS.map((spec) => installTypeScript(spec, join(tmp, `typescript-${spec}`))),
  )
  s.done(
    others
      .map((t) => (t.ok ? `typescript@${t.version}` : `SKIPPED typescript@${t.spec}`))
      .join(', '),
  )
  for (const t of others) {
    if (!t.ok) console.log(`  SKIPPED typescript@${t.spec}: ${t.reason}`)
  }

  for (const variant of ['lowest', 'latest'] as const) {
    try {
      await tryVariant(variant, {
        tmp,
        services,
        packages,
        peers,
        others,
        workspaceTypeScript,
        nodeTypes,
      })
    } catch (error) {
      failures.push(`${variant} peers: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
}

/**
 * Every publishable package, each of which must be a devDependency of this tool: that is how
 * turbo knows to build it before this test packs it.
 */
async function packagesToPack(): Promise<string[]> {
  const own = JSON.parse(await readFile(join(here, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>
  }
  const only = process.env.PACK_INSTALL_PACKAGES?.split(',').map((name) => name.trim())
  const dirs: string[] = []
  const unknown: string[] = []
  for (const dir of await publishableDirs(root)) {
    const { name } = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
      name: string
    }
    if (only && !only.includes(name)) {
      console.log(`NOT PACKING ${name}: PACK_INSTALL_PACKAGES is set and does not name it`)
      continue
    }
    if (own.devDependencies[name] !== 'workspace:^') unknown.push(name)
    dirs.push(dir)
  }
  if (unknown.length > 0) {
    throw new Error(
      `${unknown.join(', ')}: published but not a devDependency of @actor-cache/pack-install, so ` +
        'turbo may not have built it before this test. Add it to tools/pack-install/package.json ' +
        'as "workspace:^" (and run pnpm install).',
    )
  }
  return dirs
}

async function tryVariant(
  variant: 'lowest' | 'latest',
  context: {
    tmp: string
    services: Services
    packages: readonly PackedPackage[]
    peers: readonly PeerVersions[]
    others: readonly TypeScriptInstall[]
    workspaceTypeScript: string
    nodeTypes: string
  },
): Promise<void> {
  const dir = join(context.tmp, `project-${variant}`)
  let s = step(`installing ${variant} peers`)
  await createProject({
    dir,
    template: join(here, 'project'),
    packages: context.packages,
    dependencies: Object.fromEntries(context.peers.map((p) => [p.name, p[variant]])),
    devDependencies: { typescript: context.workspaceTypeScript, '@types/node': context.nodeTypes },
  })
  await npmInstall(dir)
  const names = [...context.peers.map((p) => p.name), 'typescript', '@types/node']
  const { versions, problems } = await installedVersions(dir, names)
  s.done([...versions].map(([name, version]) => `${name}@${version}`).join(', '))
  for (const peer of context.peers) {
    if (versions.get(peer.name) !== peer[variant]) {
      problems.push(`${peer.name}: installed ${versions.get(peer.name)}, expected ${peer[variant]}`)
    }
  }
  if (problems.length > 0) throw new Error(`npm ls: ${problems.join('; ')}`)

  s = step(`compiling the program with typescript@${versions.get('typescript')}`)
  await typecheck(join(dir, 'node_modules/.bin/tsc'), dir)
  s.done()
  for (const other of context.others) {
    if (!other.ok) continue
    s = step(`typechecking it with typescript@${other.version}`)
    try {
      await typecheck(other.tsc, dir, ['--noEmit'])
      s.done()
    } catch (error) {
      s.done('FAILED')
      failures.push(
        `${variant} peers, typescript@${other.version}: ${error instanceof Error ? error.message : String(error)}`,
      )
    }
  }

  s = step('running it on Redis and PostgreSQL')
  const name = `pack_install_${variant}_${process.pid}`
  const prefix = `pack-install-${variant}-${process.pid}`
  const run = await withSchema(context.services.databaseUrl, name, async (databaseUrl) => {
    try {
      return await runProgram(join(dir, 'dist/full-stack.js'), {
        cwd: dir,
        env: cleanEnv({
          DATABASE_URL: databaseUrl,
          REDIS_URL: context.services.redisUrl,
          CACHE_PREFIX: prefix,
        }),
        deadlineMs: DEADLINE_MS,
      })
    } finally {
      await clearPrefix(context.services.redisUrl, prefix)
    }
  })
  const closing = run.activeAfterClose?.length
    ? `${summarize(run.activeAfterClose)} still closing when the last close() resolved, none ${run.settledAfterMs} ms later; `
    : 'nothing active when the last close() resolved; '
  const exit =
    run.exitAfterCloseMs === undefined
      ? ''
      : `${closing}exited ${Math.round(run.exitAfterCloseMs)} ms after the last close()`
  s.done(run.killedAtDeadline ? `KILLED after ${seconds(DEADLINE_MS)}` : exit)
  const problemsOfRun: string[] = []
  if (run.killedAtDeadline) {
    problemsOfRun.push(`did not exit by itself within ${seconds(DEADLINE_MS)}`)
  } else if (run.code !== 0) {
    problemsOfRun.push(run.signal ? `killed by ${run.signal}` : `exited with code ${run.code}`)
  }
  if (run.leftOpen === undefined) {
    problemsOfRun.push('never reached the end of the program (no @@settled line)')
  } else if (run.leftOpen.length > 0) {
    problemsOfRun.push(
      `left open after closing everything (${run.settledAfterMs} ms later): ${summarize(run.leftOpen)}`,
    )
  }
  if (problemsOfRun.length > 0) {
    throw new Error(`the program ${problemsOfRun.join('; ')}. Its output:\n${run.output.trim()}`)
  }
}

/** `TCPSocketWrap ×3, Timeout` */
function summarize(names: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1)
  return [...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name)).join(', ')
}
