import { runQuickstart } from './run.js'

console.log('Actor Cache quickstart: the L1 memory tier with the design document configuration\n')
await runQuickstart()
