/**
 * One contender of the L1 write benchmark, alone in a worker thread: its own heap, so the
 * garbage collections a case causes are paid in that case's time, never in another's. Each worker
 * builds the same keys and values and fills its cache with them; then every message `n` runs `n`
 * writes over the keys in order, each a changed state of its key, and replies when done.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { createMemCache } from '@actor-cache/memcache'
import { LRUCache } from 'lru-cache'
import { actorState } from './workload.js'

/** What the main thread passes to a set worker. */
export interface SetWorkerData {
  kind: SetKind
  universe: number
  ttl: number
  /** Items in each state's bag (none when 0 or absent): a larger state, of which one field changes. */
  bag?: number
}

/** The writers compared. */
export type SetKind = 'lru-cache' | 'memcache-freeze' | 'memcache-reference'

type State = ReturnType<typeof actorState>

function writer(kind: SetKind, universe: number, ttl: number): (k: string, v: State) => unknown {
  if (kind === 'lru-cache') {
    const lru = new LRUCache<string, State>({ max: universe * 2, ttl })
    return (k, v) => lru.set(k, v)
  }
  const store = createMemCache({
    maxSize: 1024 * 1024 * 1024,
    defaultTtl: ttl,
    cleanupInterval: 0,
    values: kind === 'memcache-freeze' ? 'freeze' : 'reference',
  }).namespace<State>('primary_core')
  return (k, v) => store.setSync(k, v)
}

if (parentPort) {
  const port = parentPort
  const { kind, universe, ttl, bag = 0 } = workerData as SetWorkerData
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  // Each write changes the state, as a game update does: two versions of every state (their hp
  // differs; no object is shared between them) alternate, pass after pass over the keys.
  const versions = [0, 1].map((v) =>
    Array.from({ length: universe }, (_, i) => ({
      ...actorState(i),
      hp: 100 + (i % 50) + v,
      ...(bag > 0
        ? { bag: Array.from({ length: bag }, (_, k) => ({ item: `item-${k}`, n: k })) }
        : {}),
    })),
  ) as [State[], State[]]
  const set = writer(kind, universe, ttl)
  for (let i = 0; i < universe; i++) set(keys[i] as string, versions[1][i] as State)
  let next = 0
  port.on('message', (n: number) => {
    let last: unknown
    for (let j = 0; j < n; j++) {
      const idx = next % universe
      const values = versions[Math.floor(next / universe) & 1] as State[]
      next++
      last = set(keys[idx] as string, values[idx] as State)
    }
    port.postMessage(last === undefined ? 0 : 1)
  })
  port.postMessage('ready')
}
