/**
 * Compiles every ```ts block of the workspace's READMEs as a standalone ESM module of a user's
 * project (NodeNext, strict) against the built packages, resolved through their `exports` like an
 * install, in one TypeScript program; then runs the blocks marked `<!-- run -->` with node.
 *
 *   pnpm --filter @actor-cache/readme-examples run check [README.md ...] [--no-run]
 *
 * KEEP_EXAMPLES=1 keeps the extracted files; README_EXAMPLES_TIMEOUT sets the run deadline (ms).
 */
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BlockFile, compileBlocks, type Problem } from './compile.js'
import { type CodeBlock, extractBlocks } from './markdown.js'
import { reachable, runExample, writeHandleReporter } from './run.js'

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/test'
const REDIS = { host: '127.0.0.1', port: 6379 }

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const runBlocks = !args.includes('--no-run')
  const packageDir = fileURLToPath(new URL('..', import.meta.url))
  const root = workspaceRoot(packageDir)
  // pnpm runs scripts in the package directory; INIT_CWD is where the user typed the command
  const cwd = process.env.INIT_CWD ?? process.cwd()
  const only = args.filter((a) => !a.startsWith('--')).map((a) => relative(root, resolve(cwd, a)))
  const readmes = only.length > 0 ? only : await workspaceReadmes(root)

  const blocks: CodeBlock[] = []
  for (const readme of readmes) {
    blocks.push(...extractBlocks(await readFile(join(root, readme), 'utf8'), readme))
  }
  const dir = await mkdtemp(join(packageDir, '.examples-'))
  try {
    return await check(blocks, dir, runBlocks)
  } finally {
    if (process.env.KEEP_EXAMPLES === '1') console.log(`extracted blocks kept in ${dir}`)
    else await rm(dir, { recursive: true, force: true })
  }
}

async function check(blocks: readonly CodeBlock[], dir: string, runBlocks: boolean) {
  const files: BlockFile[] = blocks.map((block) => ({
    block,
    path: join(dir, `${slug(block.file)}.L${block.line}.ts`),
  }))
  for (const file of files) await writeFile(file.path, `${file.block.code}\n`)

  const started = performance.now()
  const result = compileBlocks(files)
  const compileSeconds = ((performance.now() - started) / 1000).toFixed(1)
  const count = (mode: CodeBlock['mode']) => blocks.filter((b) => b.mode === mode).length
  const checked = blocks.length - count('fragment')
  for (const message of result.global) console.error(`error: ${message}`)
  for (const problem of result.problems) console.error(format(problem))
  const failing = [...new Set(result.problems.map((p) => `${p.block.file}:${p.block.line}`))]
  const compiled = result.global.length === 0 && failing.length === 0
  if (compiled) {
    console.log(
      `README examples: ${checked} blocks compile and ${count('fragment')} marked fragments parse (${compileSeconds}s)`,
    )
  } else {
    console.error(
      `README examples: ${failing.length} of ${blocks.length} blocks fail to compile (${compileSeconds}s): ${failing.join(', ')}`,
    )
    console.error(
      'Each block is compiled as a module of a new ESM project (NodeNext, strict): give it its imports. ' +
        'A deliberately incomplete block is marked with <!-- fragment --> on the line before it.',
    )
  }
  if (!runBlocks) return compiled ? 0 : 1

  const reporter = await writeHandleReporter(dir)
  const timeoutMs = Number(process.env.README_EXAMPLES_TIMEOUT ?? 180_000)
  if (!(timeoutMs > 0)) {
    throw new Error(
      `README_EXAMPLES_TIMEOUT must be a positive number of ms, got ${process.env.README_EXAMPLES_TIMEOUT}`,
    )
  }
  const env = { ...process.env, DATABASE_URL: process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL }
  let failures = 0
  for (const file of files) {
    const script = result.emitted.get(file.path)
    if (!script) continue
    const where = `${file.block.file}:${file.block.line}`
    const outcome = await runExample(script, { cwd: dir, timeoutMs, reporter, env })
    const seconds = (outcome.ms / 1000).toFixed(1)
    if (outcome.ok) {
      console.log(`ran ${where} (${seconds}s)`)
      continue
    }
    failures++
    console.error(`\n${where}: the example ${outcome.reason}`)
    if (outcome.output.trim()) console.error(indent(outcome.output.trimEnd()))
    for (const hint of await serviceHints(env.DATABASE_URL)) console.error(hint)
  }
  if (failures > 0) {
    console.error(`\nREADME examples: ${failures} of ${result.emitted.size} runnable blocks failed`)
  }
  const notRun = count('run') - result.emitted.size
  if (notRun > 0)
    console.error(`README examples: ${notRun} runnable blocks not run (they do not compile)`)
  return compiled && failures === 0 ? 0 : 1
}

function format(problem: Problem): string {
  const { block } = problem
  const pointer = `${' '.repeat(Math.max(0, problem.column - 1))}^`
  return [
    `${block.file}:${problem.line}:${problem.column} - error ${problem.message}`,
    indent(problem.source),
    indent(pointer),
    `  (in the block at ${block.file}:${block.line}${block.mode === 'fragment' ? ', a fragment' : ''})`,
    '',
  ].join('\n')
}

async function serviceHints(databaseUrl: string): Promise<string[]> {
  const hints: string[] = []
  if (!(await reachable(REDIS.host, REDIS.port))) {
    hints.push(
      `  hint: nothing listens at ${REDIS.host}:${REDIS.port}; examples that use Redis need it (start redis-server)`,
    )
  }
  const db = new URL(databaseUrl)
  if (!(await reachable(db.hostname, Number(db.port || 5432)))) {
    hints.push(
      `  hint: PostgreSQL at ${db.host} (DATABASE_URL) is not reachable; examples that use it need it`,
    )
  }
  return hints
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n')
}

function slug(readme: string): string {
  const dir = dirname(readme)
  return dir === '.' ? 'root' : dir.replaceAll(/[\\/]/g, '_')
}

function workspaceRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir
    if (dirname(dir) === dir) throw new Error(`no pnpm-workspace.yaml above ${from}`)
  }
}

/**
 * The root README, the README of every workspace package (from pnpm-workspace.yaml) and the
 * pages of `docs/`.
 */
async function workspaceReadmes(root: string): Promise<string[]> {
  const manifest = await readFile(join(root, 'pnpm-workspace.yaml'), 'utf8')
  const section = /^packages:\n((?:[ \t]+-.*\n?|[ \t]*#.*\n?)*)/m.exec(manifest)?.[1] ?? ''
  const patterns = [...section.matchAll(/^[ \t]+-[ \t]*["']?([^"'\s#]+)/gm)].map((m) => m[1] ?? '')
  const dirs = ['.']
  for (const pattern of patterns) {
    if (pattern.startsWith('!')) continue
    if (pattern.endsWith('/*')) {
      const parent = pattern.slice(0, -2)
      const entries = await readdir(join(root, parent), { withFileTypes: true }).catch(() => [])
      for (const entry of entries) if (entry.isDirectory()) dirs.push(join(parent, entry.name))
    } else {
      dirs.push(pattern)
    }
  }
  const docs = await readdir(join(root, 'docs'), { withFileTypes: true }).catch(() => [])
  const pages = docs
    .filter((e) => e.isFile() && e.name.endsWith('.md'))
    .map((e) => join('docs', e.name))
  return dirs
    .map((dir) => join(dir, 'README.md'))
    .filter((readme) => existsSync(join(root, readme)))
    .concat(pages)
    .sort((a, b) => (a === 'README.md' ? -1 : b === 'README.md' ? 1 : a.localeCompare(b)))
}

process.exitCode = await main()
