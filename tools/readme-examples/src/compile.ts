import ts from 'typescript'
import type { CodeBlock } from './markdown.js'

/**
 * The options of a user's new project as `tsc --init` (TypeScript 6) writes them, with Node's
 * types: ESM under NodeNext, strict, every module on its own.
 */
export const USER_COMPILER_OPTIONS: ts.CompilerOptions = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2023,
  types: ['node'],
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  verbatimModuleSyntax: true,
  isolatedModules: true,
  noUncheckedSideEffectImports: true,
  moduleDetection: ts.ModuleDetectionKind.Force,
  skipLibCheck: true,
}

/** A block written out as a module. */
export interface BlockFile {
  readonly block: CodeBlock
  /** Absolute path of the `.ts` file. */
  readonly path: string
}

/** A compiler message placed in its README. */
export interface Problem {
  readonly block: CodeBlock
  /** 1-based line and column in the README. */
  readonly line: number
  readonly column: number
  readonly message: string
  /** The README line the message points at. */
  readonly source: string
}

/** Result of {@link compileBlocks}. */
export interface CompileResult {
  readonly problems: Problem[]
  /** Problems not inside any block (compiler options, missing type packages). */
  readonly global: string[]
  /** The emitted `.js` of each `run` block without problems, by `.ts` path. */
  readonly emitted: Map<string, string>
}

/**
 * Checks every block file in one program: `compile` and `run` blocks fully, fragments for syntax
 * only. Emits the `run` blocks that have no problems next to their sources.
 */
export function compileBlocks(files: readonly BlockFile[]): CompileResult {
  const byPath = new Map(files.map((f) => [ts.sys.resolvePath(f.path), f]))
  const program = ts.createProgram({
    rootNames: files.map((f) => f.path),
    options: { ...USER_COMPILER_OPTIONS, noEmit: false },
  })
  const problems: Problem[] = []
  const global: string[] = []
  for (const diagnostic of program.getOptionsDiagnostics()) global.push(flatten(diagnostic))
  for (const diagnostic of program.getGlobalDiagnostics()) global.push(flatten(diagnostic))
  for (const file of files) {
    const source = program.getSourceFile(file.path)
    if (!source) {
      global.push(`${file.path}: not part of the program`)
      continue
    }
    const diagnostics =
      file.block.mode === 'fragment'
        ? program.getSyntacticDiagnostics(source)
        : [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    for (const diagnostic of diagnostics) {
      const problem = place(diagnostic, byPath)
      if (problem) problems.push(problem)
      else global.push(flatten(diagnostic))
    }
  }
  const emitted = new Map<string, string>()
  if (global.length > 0) return { problems, global, emitted }
  const failing = new Set(problems.map((p) => p.block))
  for (const file of files) {
    if (file.block.mode !== 'run' || failing.has(file.block)) continue
    const source = program.getSourceFile(file.path)
    const result = program.emit(source)
    for (const diagnostic of result.diagnostics) global.push(flatten(diagnostic))
    emitted.set(file.path, file.path.replace(/\.ts$/, '.js'))
  }
  return { problems, global, emitted }
}

function place(
  diagnostic: ts.Diagnostic,
  byPath: ReadonlyMap<string, BlockFile>,
): Problem | undefined {
  const file = diagnostic.file && byPath.get(ts.sys.resolvePath(diagnostic.file.fileName))
  if (!file || !diagnostic.file || diagnostic.start === undefined) return undefined
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
  return {
    block: file.block,
    line: file.block.line + line,
    column: character + 1,
    message: `TS${diagnostic.code}: ${flatten(diagnostic)}`,
    source: file.block.code.split('\n')[line] ?? '',
  }
}

function flatten(diagnostic: ts.Diagnostic): string {
  return ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ')
}
