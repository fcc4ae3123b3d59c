import { startDemoServer } from './app.js'
import { optionsFromEnv } from './env.js'
import { StartupError } from './startup-error.js'

const log = (line: string): void => console.log(line)

try {
  log('Actor Cache demo server: starting')
  const server = await startDemoServer({ ...optionsFromEnv(process.env), log })
  const tokens = [...server.stack.settings.demo.tokens].map(([t, o]) => `${o.role}: ${t}`)
  log(`\nlistening on ${server.url}`)
  log(`  try:    curl -H 'Authorization: Bearer demo-player-token' ${server.url}/actors/1/derived`)
  log(`  tokens: ${tokens.join(', ')}`)
  log(`  API:    ${server.url}/openapi.json   metrics: ${server.url}/metrics`)
  log('  stop:   Ctrl+C\n')
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log(`${signal}: finishing requests and persisting queued writes ...`)
    server.close().then(
      () => log('stopped'),
      (error: unknown) => {
        console.error('error while stopping:', error)
        process.exitCode = 1
      },
    )
  }
  process.once('SIGINT', () => stop('SIGINT'))
  process.once('SIGTERM', () => stop('SIGTERM'))
} catch (error) {
  if (error instanceof StartupError) {
    console.error(`\nThe demo server cannot start: ${error.message}`)
  } else {
    console.error('\nThe demo server cannot start:', error)
  }
  process.exitCode = 1
}
