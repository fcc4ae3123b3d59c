import { LoadSetupError } from './admin-client.js'
import { parseLoadOptions, USAGE } from './options.js'
import { consoleOutput } from './progress.js'
import { formatReport } from './report.js'
import { runLoad } from './run-load.js'

// `pnpm demo:load`: the load generator against a running demo server (README: "Load generator")
try {
  const options = parseLoadOptions(process.argv.slice(2), process.env)
  if (options === 'help') {
    console.log(USAGE)
  } else {
    const stop = new AbortController()
    process.once('SIGINT', () => {
      console.log('\nSIGINT: ending the run early; the caching switch is put back')
      stop.abort()
    })
    const output = consoleOutput()
    const report = await runLoad(options, output, stop.signal)
    output.line('')
    for (const line of formatReport(report)) output.line(line)
  }
} catch (error) {
  if (error instanceof LoadSetupError || error instanceof RangeError || isArgError(error)) {
    console.error(`pnpm demo:load: ${(error as Error).message}`)
    if (!(error instanceof LoadSetupError)) console.error(`\n${USAGE}`)
  } else {
    console.error('pnpm demo:load failed:', error)
  }
  process.exitCode = 1
}

/** `parseArgs`'s errors for unknown or malformed flags. */
function isArgError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')
}
