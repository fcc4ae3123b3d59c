/**
 * The examples in examples/ are the README's: each runs here as a user runs it, in a node process
 * of its own against the built package, and must then have nothing left open. The README must
 * show each one as it is.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DATABASE_URL, postgres, type TestDb } from './db.js'

const PACKAGE = new URL('../', import.meta.url)
/** Only stops a broken run from hanging: PGlite takes long to boot on a loaded machine. */
const BOUND = 180_000

const source = (name: string): Promise<string> =>
  readFile(new URL(`examples/${name}`, PACKAGE), 'utf8')

interface Run {
  code: number | null
  stdout: string
  stderr: string
  /** Timers and handles beyond the process's own stdio right after the example's last statement. */
  atEnd: string[]
  /** The same once the sockets the example closed have finished closing. */
  settled: string[]
}

// Prepended and appended to an example. Requests in flight (`CloseReq`, `FSReqCallback`) finish by
// themselves and are left out; a socket that was closed needs a few event-loop turns to be gone
// (turns, not time: a timer left running must still be seen).
const PROLOGUE = `const __open = () => process.getActiveResourcesInfo().filter((r) => !r.endsWith('Req'))
const __before = __open()
const __beyond = () => { const rest = [...__before]; return __open().filter((r) => { const i = rest.indexOf(r); if (i < 0) return true; rest.splice(i, 1); return false }) }
`
const EPILOGUE = `
const __atEnd = __beyond()
for (let turn = 0; turn < 100_000 && __beyond().some((r) => /Socket|Pipe|TCP/.test(r)); turn++) await new Promise((r) => setImmediate(r))
console.log('OPEN ' + JSON.stringify({ atEnd: __atEnd, settled: __beyond() }))
`

/**
 * Runs an example in a child node process in the package directory (so the package's own name
 * resolves to its build) and reports what it left open.
 */
async function runExample(name: string, env: Record<string, string> = {}): Promise<Run> {
  const js = ts.transpileModule(await source(name), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023 },
  }).outputText
  const child = spawn(process.execPath, ['--input-type=module'], {
    cwd: PACKAGE,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  child.stdin.end(PROLOGUE + js + EPILOGUE)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  const line = stdout.split('\n').find((l) => l.startsWith('OPEN '))
  const open = line === undefined ? undefined : JSON.parse(line.slice(5))
  return {
    code,
    stdout,
    stderr,
    atEnd: open?.atEnd ?? ['<no report>'],
    settled: open?.settled ?? ['<no report>'],
  }
}

/** Nothing left: no timer at the end of the program, and no handle once closes completed. */
function expectNothingOpen(run: Run): void {
  expect(run.atEnd.filter((r) => !/Socket|Pipe|TCP/.test(r))).toEqual([])
  expect(run.settled).toEqual([])
}

function withSchema(url: string, schema: string): string {
  const u = new URL(url)
  u.searchParams.set('schema', schema)
  return u.toString()
}

describe('README examples', () => {
  it('are shown in the README exactly as they are in examples/', async () => {
    const readme = await readFile(new URL('README.md', PACKAGE), 'utf8')
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
    for (const name of ['postgres.ts', 'pglite.ts', 'dead-letters.ts']) {
      expect(blocks, `README block for examples/${name}`).toContain(await source(name))
    }
  })

  describe('on PostgreSQL, in the schema that ?schema= names', () => {
    let db: TestDb
    beforeAll(async () => {
      db = await postgres()
    })
    afterAll(async () => {
      await db?.drop()
    })

    it(
      'postgres.ts stores and reads an entry there, then exits with nothing left open',
      async () => {
        const run = await runExample('postgres.ts', {
          DATABASE_URL: withSchema(DATABASE_URL, db.schema as string),
        })
        expect(run.stderr).toBe('')
        expect(run.code).toBe(0)
        expectNothingOpen(run)
        expect(run.stdout).toMatch(/value: \{ hp: 100 \}/)
        expect(run.stdout).toMatch(/version: 7/)
        // the tables and the row are in the named schema (db.prisma's search_path), not in public
        const rows = await db.prisma.$queryRawUnsafe<{ schema: string; version: bigint }[]>(
          `SELECT t.table_schema AS schema, e.version FROM ac_cache_entries e,
             information_schema.tables t
            WHERE e.namespace = 'primary_core' AND e.key = 'actor:123'
              AND t.table_name = 'ac_cache_entries' AND t.table_schema = $1`,
          db.schema,
        )
        expect(rows).toEqual([{ schema: db.schema, version: 7n }])
      },
      BOUND,
    )

    it(
      'dead-letters.ts adds, lists and removes a letter, then exits with nothing left open',
      async () => {
        const run = await runExample('dead-letters.ts', {
          DATABASE_URL: withSchema(DATABASE_URL, db.schema as string),
        })
        expect(run.stderr).toBe('')
        expect(run.code).toBe(0)
        expectNothingOpen(run)
        expect(run.stdout).toContain('actor:123 v8: value too long for type character varying(10)')
        expect(run.stdout).toMatch(/^1$/m)
      },
      BOUND,
    )
  })

  it(
    'pglite.ts stores and reads an entry, and $disconnect() closes PGlite: nothing is left open',
    async () => {
      const run = await runExample('pglite.ts')
      expect(run.stderr).toBe('')
      expect(run.code).toBe(0)
      expect(run.stdout).toMatch(/value: \{ hp: 100 \}/)
      expectNothingOpen(run)
    },
    BOUND,
  )
})
