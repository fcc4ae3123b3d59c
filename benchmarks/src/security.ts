import { createMemCache } from '@actor-cache/memcache'
import { guardCache, runAs } from '@actor-cache/security'
import { createTieredCache } from '@actor-cache/strategies'
import { awaitedCase, type BenchResult, compare, table } from './harness.js'
import { actorState, zipfSequence } from './workload.js'

type State = ReturnType<typeof actorState>

/** Options of the security suite. */
export interface SecurityOptions {
  /** Distinct keys. @default 100_000 */
  universe?: number
  /** Operations per case per round. @default 50_000 */
  opsPerRound?: number
  /** Measured rounds. @default 9 */
  rounds?: number
  log?: (line: string) => void
}

export interface SecurityReport {
  hit: BenchResult[]
  /** Guarded L1 hit (principal bound with `as`) / unguarded (target ≤ 1.3). */
  boundRatio: number
  /** Guarded L1 hit (principal from the request context, `runAs`) / unguarded (target ≤ 1.3). */
  contextRatio: number
}

const NS = 'primary_core'
const PLAIN = 'tiered ns.get (L1 hit), unguarded'
const BOUND = 'guarded ns.get, principal bound with as()'
const CONTEXT = 'guarded ns.get, principal from runAs()'

/** The access guard's cost on an L1 hit, side by side with the unguarded hit. */
export async function runSecuritySuite(options: SecurityOptions = {}): Promise<SecurityReport> {
  const log = options.log ?? console.log
  const universe = options.universe ?? 100_000
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  const seq = zipfSequence(universe, 0.99, 1 << 20, 11)
  const accessKeys = Array.from(seq, (rank) => keys[rank] as string)
  const mask = accessKeys.length - 1

  const mem = createMemCache({ maxSize: 1024 * 1024 * 1024, cleanupInterval: 0 })
  const cache = createTieredCache({ l1: mem })
  const ns = cache.namespace<State>(NS, { ttl: 300_000, record: false })
  for (let i = 0; i < universe; i++) await ns.set(keys[i] as string, actorState(i))
  const guarded = guardCache(cache, {
    policy: {
      roles: {
        player: [{ namespaces: ['inventory', 'zone_*'], operations: ['read'] }],
        server: [{ namespaces: ['primary_*', 'derived_*'], operations: ['read', 'write'] }],
      },
    },
  })
  const principal = { id: 'game-server-1', roles: ['player', 'server'] }
  const bound = guarded.as(principal).namespace<State>(NS)
  const fromContext = guarded.namespace<State>(NS)

  const cursor = () => {
    let i = 0
    return () => accessKeys[i++ & mask] as string
  }
  const plainCase = awaitedCase(PLAIN, cursor(), (k) => ns.get(k))
  const boundCase = awaitedCase(BOUND, cursor(), (k) => bound.get(k))
  const contextInner = awaitedCase(CONTEXT, cursor(), (k) => fromContext.get(k))
  // one request context around the loop, as a request handler would set it once
  const contextCase = {
    name: CONTEXT,
    run: (n: number) => runAs(principal, () => contextInner.run(n)),
  }

  log('\n## Security: the access guard on an L1 hit\n')
  const hit = await compare([plainCase, boundCase, contextCase], {
    opsPerRound: options.opsPerRound ?? 50_000,
    rounds: options.rounds ?? 9,
    onRound: (r, total) => process.stderr.write(`\r  guard: round ${r}/${total}`),
  })
  process.stderr.write('\n')
  log(table(hit, PLAIN))
  const ns_ = (name: string) => hit.find((r) => r.name === name)?.nsPerOp ?? Number.NaN
  const boundRatio = ns_(BOUND) / ns_(PLAIN)
  const contextRatio = ns_(CONTEXT) / ns_(PLAIN)
  log(
    `\nguarded / unguarded L1 hit: ${boundRatio.toFixed(2)}x bound, ${contextRatio.toFixed(2)}x from the request context (target ≤ 1.3x)`,
  )
  await cache.close()
  await mem.close()
  return { hit, boundRatio, contextRatio }
}
