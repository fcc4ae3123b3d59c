import { cpus } from 'node:os'
import { runHitRatioSuite } from './hitratio.js'
import { runL1Suite } from './l1.js'
import { runL2Suite } from './l2.js'
import { runL3Suite } from './l3.js'
import { runMetricsSuite } from './metrics.js'
import { runSecuritySuite } from './security.js'
import { runTieredSuite } from './tiered.js'
import { runTrackingSuite } from './tracking.js'

const suites: Record<string, () => Promise<unknown>> = {
  l1: () => runL1Suite(),
  hitratio: () => runHitRatioSuite(),
  l2: () => runL2Suite(),
  l3: () => runL3Suite(),
  tiered: () => runTieredSuite(),
  metrics: () => runMetricsSuite(),
  security: () => runSecuritySuite(),
  tracking: () => runTrackingSuite(),
  queue: async () => (await import('./queue.js')).runQueueSuite(),
  streams: async () => (await import('./streams.js')).runStreamsSuite(),
}

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const unknown = wanted.filter((w) => !(w in suites))
if (unknown.length > 0) {
  console.error(
    `unknown suite(s): ${unknown.join(', ')}; available: ${Object.keys(suites).join(', ')}`,
  )
  process.exit(2)
}
console.log(`# Actor Cache benchmarks`)
console.log(
  `node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}), ${new Date().toISOString()}`,
)
console.log(
  'Ratios compare cases measured side by side in this run; absolute times vary by machine.',
)
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  await suites[name]?.()
}
