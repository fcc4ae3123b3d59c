/** How a README block is checked. */
export type BlockMode =
  /** compiled as a standalone module (the default) */
  | 'compile'
  /** compiled, then run with node: it must exit 0 by itself */
  | 'run'
  /** deliberately incomplete: only parsed */
  | 'fragment'

/** A TypeScript code block of a Markdown file. */
export interface CodeBlock {
  /** The Markdown file, as given. */
  readonly file: string
  /** 1-based line of the block's first code line (the line after the opening fence). */
  readonly line: number
  readonly mode: BlockMode
  readonly code: string
}

const TS_LANGUAGES = new Set(['ts', 'typescript', 'mts'])
const MODES = new Set<BlockMode>(['run', 'fragment'])
const FENCE = /^( {0,3})(`{3,}|~{3,})\s*(.*)$/
// Another comment is not a marker; a misspelt marker leaves the block compiled, so it still fails loudly.
const MARKER = /^\s*<!--\s*(run|fragment)\s*-->\s*$/

/**
 * The ```ts / ```typescript blocks of a Markdown text. A block is marked by an HTML comment on
 * the line before its fence (blank lines between are allowed), `<!-- run -->` or
 * `<!-- fragment -->`, or by a word after the language (```ts fragment).
 * @throws {Error} for a marker before a block that is not TypeScript, a block marked both ways or
 *   an unclosed fence, naming file and line
 */
export function extractBlocks(text: string, file: string): CodeBlock[] {
  const lines = text.split(/\r?\n/)
  const blocks: CodeBlock[] = []
  let marker: { mode: BlockMode; line: number } | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    const markerMatch = MARKER.exec(line)
    if (markerMatch) {
      marker = { mode: markerMatch[1] as BlockMode, line: i + 1 }
      continue
    }
    const fence = FENCE.exec(line)
    if (!fence) {
      if (line.trim() !== '') marker = undefined
      continue
    }
    const indent = fence[1]?.length ?? 0
    const ticks = fence[2] ?? '```'
    const [language = '', ...words] = (fence[3] ?? '').trim().split(/\s+/)
    const end = closingFence(lines, i + 1, ticks)
    if (end === -1) throw new Error(`${file}:${i + 1}: code block is never closed`)
    if (TS_LANGUAGES.has(language.toLowerCase())) {
      const modes = words.filter((w): w is BlockMode => MODES.has(w as BlockMode))
      if (marker) modes.push(marker.mode)
      if (modes.includes('run') && modes.includes('fragment')) {
        throw new Error(`${file}:${i + 1}: a block cannot be both a fragment and run`)
      }
      const code = lines
        .slice(i + 1, end)
        .map((l) => stripIndent(l, indent))
        .join('\n')
      blocks.push({ file, line: i + 2, mode: modes[0] ?? 'compile', code })
    } else if (marker) {
      throw new Error(
        `${file}:${marker.line}: <!-- ${marker.mode} --> marks a block that is not TypeScript`,
      )
    }
    marker = undefined
    i = end
  }
  return blocks
}

function closingFence(lines: readonly string[], from: number, ticks: string): number {
  const fenceChar = ticks[0] ?? '`'
  for (let j = from; j < lines.length; j++) {
    const trimmed = (lines[j] ?? '').trim()
    if (trimmed.length >= ticks.length && [...trimmed].every((c) => c === fenceChar)) return j
  }
  return -1
}

function stripIndent(line: string, indent: number): string {
  let n = 0
  while (n < indent && line[n] === ' ') n++
  return line.slice(n)
}
