import { runQuickstart } from './run.js'

console.log(
  'Actor Cache quickstart: a TieredCache on the example configuration, embedded PostgreSQL as the store of record\n',
)
await runQuickstart()
