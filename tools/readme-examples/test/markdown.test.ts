import { describe, expect, it } from 'vitest'
import { extractBlocks } from '../src/markdown.js'

const readme = [
  '# title', // 1
  '', // 2
  '```ts', // 3
  "import { x } from 'y'", // 4
  '```', // 5
  '', // 6
  '<!-- run -->', // 7
  '', // 8
  '```typescript', // 9
  'await run()', // 10
  '```', // 11
  '```ts fragment', // 12
  'partial(', // 13
  '```', // 14
  '<!-- fragment -->', // 15
  'Some prose in between.', // 16
  '```sh', // 17
  'pnpm add x', // 18
  '```', // 19
  '1. a list', // 20
  '   ```ts', // 21
  '   const indented = 1', // 22
  '   ```', // 23
  '````md', // 24
  '```ts', // 25
  'not a block of its own', // 26
  '```', // 27
  '````', // 28
].join('\n')

describe('extractBlocks', () => {
  const blocks = extractBlocks(readme, 'README.md')

  it('finds TypeScript blocks with the README line of their first code line', () => {
    expect(blocks.map((b) => [b.line, b.mode, b.code])).toEqual([
      [4, 'compile', "import { x } from 'y'"],
      [10, 'run', 'await run()'],
      [13, 'fragment', 'partial('],
      [22, 'compile', 'const indented = 1'],
    ])
  })

  it('forgets a marker once prose follows it', () => {
    expect(extractBlocks('<!-- run -->\ntext\n```ts\nx\n```', 'R.md')[0]?.mode).toBe('compile')
    expect(extractBlocks('<!-- run -->\ntext\n```sh\nls\n```', 'R.md')).toEqual([])
  })

  it('rejects a marker before a block that is not TypeScript', () => {
    expect(() => extractBlocks('<!-- run -->\n```sh\nls\n```', 'a/README.md')).toThrow(
      'a/README.md:1: <!-- run --> marks a block that is not TypeScript',
    )
  })

  it('rejects a block marked both ways and an unclosed fence', () => {
    expect(() => extractBlocks('<!-- run -->\n```ts fragment\nx\n```', 'R.md')).toThrow(
      'R.md:2: a block cannot be both a fragment and run',
    )
    expect(() => extractBlocks('text\n```ts\nconst a = 1\n', 'R.md')).toThrow(
      'R.md:2: code block is never closed',
    )
  })
})
