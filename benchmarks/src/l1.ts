import { Worker } from 'node:worker_threads'
import { createMemCache } from '@actor-cache/memcache'
import { LRUCache } from 'lru-cache'
import { awaitedCase, type BenchCase, type BenchResult, compare, table } from './harness.js'
import type { SetWorkerData } from './l1-set-worker.js'
import { actorState, zipfSequence } from './workload.js'

type State = ReturnType<typeof actorState>

/** Options of the L1 suite. */
export interface L1Options {
  /** Distinct keys, all resident (the hit path). @default 100_000 */
  universe?: number
  opsPerRound?: number
  rounds?: number
  log?: (line: string) => void
}

/** Figures the suite reports for the closing note. */
export interface L1Report {
  get: BenchResult[]
  set: BenchResult[]
  /** memcache awaited get / raw lru-cache awaited get (target ≤ 1.5). */
  hitRatioToAwaitedLru: number
  /** memcache getSync / raw lru-cache sync get. */
  syncRatioToLru: number
  /** memcache getSync with evictionPolicy 'tinylfu' / the same with 'lru' (target ≤ 1.1). */
  tinylfuToLruHit: number
  /** memcache setSync / lru-cache set (TTL on), freeze and reference (targets ≤ 4 and ≤ 3). */
  setRatioFreeze: number
  setRatioReference: number
  /** Estimated bytes / measured heap growth, for the byte budget's accuracy. */
  sizeAccuracy: number | undefined
}

const TTL = 300_000
/** Items in the bag of the larger states the second write table uses. */
const BAG = 40

/** L1 hit path and write path: raw Map and lru-cache against memcache, side by side. */
export async function runL1Suite(options: L1Options = {}): Promise<L1Report> {
  const log = options.log ?? console.log
  const universe = options.universe ?? 100_000
  const opsPerRound = options.opsPerRound ?? 200_000
  const rounds = options.rounds ?? 9
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  const values = Array.from({ length: universe }, (_, i) => actorState(i))
  const seq = zipfSequence(universe, 0.99, 1 << 20, 7)
  const accessKeys = Array.from(seq, (rank) => keys[rank] as string)
  const mask = accessKeys.length - 1

  const map = new Map<string, State>()
  const lru = new LRUCache<string, State>({ max: universe * 2 })
  const lruTtl = new LRUCache<string, State>({ max: universe * 2, ttl: TTL })
  const mem = createMemCache({ maxSize: 1024 * 1024 * 1024, defaultTtl: TTL, cleanupInterval: 0 })
  const store = mem.namespace<State>('primary_core')
  const memLfu = createMemCache({
    maxSize: 1024 * 1024 * 1024,
    defaultTtl: TTL,
    cleanupInterval: 0,
    evictionPolicy: 'tinylfu',
  })
  const lfuStore = memLfu.namespace<State>('primary_core')
  // Filled in one loop, so the two modes' entries lie alike in the heap.
  for (let i = 0; i < universe; i++) {
    const k = keys[i] as string
    const v = values[i] as State
    map.set(k, v)
    lru.set(k, v)
    lruTtl.set(k, v)
    store.setSync(k, v)
    lfuStore.setSync(k, v)
  }
  const awaitedLru = async (k: string): Promise<State | undefined> => lruTtl.get(k)

  const cursor = (): (() => string) => {
    let i = 0
    return () => accessKeys[i++ & mask] as string
  }
  const syncCase = (name: string, get: (k: string) => unknown) => {
    const next = cursor()
    return {
      name,
      run(n: number) {
        let hits = 0
        for (let i = 0; i < n; i++) if (get(next()) !== undefined) hits++
        return hits
      },
    }
  }
  const asyncCase = (name: string, get: (k: string) => Promise<unknown>) =>
    awaitedCase(name, cursor(), get)

  log(
    `\n## L1 hit path (Zipf s=0.99 over ${universe.toLocaleString('en-US')} resident keys, TTL on)\n`,
  )
  const progress = (what: string) => (r: number, total: number) =>
    process.stderr.write(`\r  ${what}: round ${r}/${total}`)
  const get = await compare(
    [
      syncCase('Map.get', (k) => map.get(k)),
      syncCase('lru-cache get (no ttl)', (k) => lru.get(k)),
      syncCase('lru-cache get (ttl)', (k) => lruTtl.get(k)),
      syncCase('memcache getSync', (k) => store.getSync(k)),
      syncCase('memcache getSync (tinylfu)', (k) => lfuStore.getSync(k)),
      asyncCase('lru-cache get (ttl), awaited', awaitedLru),
      asyncCase('memcache get, awaited', (k) => store.get(k)),
      asyncCase('memcache get, awaited (tinylfu)', (k) => lfuStore.get(k)),
    ],
    { opsPerRound, rounds, onRound: progress('get') },
  )
  process.stderr.write('\n')
  log(table(get, 'lru-cache get (ttl), awaited'))

  // Each writer runs alone in a worker thread, with its own heap: in one shared heap the copies
  // the freeze case keeps alive were collected in whichever case ran next, and the reference
  // and lru-cache cases paid for them. Same keys in the same order, same values, for all three.
  log(
    `\n## L1 writes (actor state objects, each write a changed state (its hp), TTL on; each writer in its own worker thread)\n`,
  )
  const set = await compareWriters(
    '',
    { universe, ttl: TTL },
    { opsPerRound, rounds, onRound: progress('set') },
  )
  log(table(set, 'lru-cache set (ttl)'))

  // A larger state of which one field changes: a frozen copy shares the unchanged parts of the
  // copy the key held, so a write allocates only the changed path.
  log(`\n## L1 writes of larger states (a bag of ${BAG} items, about 1.5 KB; only hp changes)\n`)
  const bigSet = await compareWriters(
    ', large state',
    { universe, ttl: TTL, bag: BAG },
    { opsPerRound: opsPerRound / 20, rounds, onRound: progress('large set') },
  )
  log(table(bigSet, 'lru-cache set (ttl), large state'))

  const sizeAccuracy = measureSizeAccuracy(Math.min(universe, 50_000))
  if (sizeAccuracy !== undefined) {
    log(`\nbyte budget accounting: estimated / measured heap growth = ${sizeAccuracy.toFixed(2)}`)
  }
  await mem.close()
  await memLfu.close()

  const byName = (rs: BenchResult[], name: string): number =>
    rs.find((r) => r.name === name)?.nsPerOp ?? Number.NaN
  const hitRatioToAwaitedLru =
    byName(get, 'memcache get, awaited') / byName(get, 'lru-cache get (ttl), awaited')
  const syncRatioToLru = byName(get, 'memcache getSync') / byName(get, 'lru-cache get (ttl)')
  const tinylfuToLruHit =
    byName(get, 'memcache getSync (tinylfu)') / byName(get, 'memcache getSync')
  const setRatioFreeze =
    byName(set, 'memcache setSync (freeze)') / byName(set, 'lru-cache set (ttl)')
  const setRatioReference =
    byName(set, 'memcache setSync (reference)') / byName(set, 'lru-cache set (ttl)')
  log(
    `\nmemcache awaited hit = ${hitRatioToAwaitedLru.toFixed(2)}x an awaited lru-cache get (target ≤ 1.5x); ` +
      `getSync = ${syncRatioToLru.toFixed(2)}x a sync lru-cache get; ` +
      `getSync with tinylfu = ${tinylfuToLruHit.toFixed(2)}x with lru (target ≤ 1.1x)\n` +
      `setSync = ${setRatioFreeze.toFixed(2)}x (freeze, target ≤ 4x) and ${setRatioReference.toFixed(2)}x ` +
      `(reference, target ≤ 3x) an lru-cache set`,
  )
  return {
    get,
    set,
    hitRatioToAwaitedLru,
    syncRatioToLru,
    tinylfuToLruHit,
    setRatioFreeze,
    setRatioReference,
    sizeAccuracy,
  }
}

/**
 * lru-cache `set` against memcache `setSync` in both value modes, each writer in a worker thread
 * of its own over the same states; `suffix` ends every case name.
 */
async function compareWriters(
  suffix: string,
  data: Omit<SetWorkerData, 'kind'>,
  run: { opsPerRound: number; rounds: number; onRound: (r: number, total: number) => void },
): Promise<BenchResult[]> {
  const writers = await Promise.all([
    startSetWorker(`lru-cache set (ttl)${suffix}`, { ...data, kind: 'lru-cache' }),
    startSetWorker(`memcache setSync (freeze)${suffix}`, { ...data, kind: 'memcache-freeze' }),
    startSetWorker(`memcache setSync (reference)${suffix}`, {
      ...data,
      kind: 'memcache-reference',
    }),
  ])
  try {
    return await compare(writers, run)
  } finally {
    await Promise.all(writers.map((w) => w.close()))
    process.stderr.write('\n')
  }
}

/** A benchmark case whose writes run in a worker thread of their own (see `l1-set-worker.ts`). */
async function startSetWorker(
  name: string,
  data: SetWorkerData,
): Promise<BenchCase & { close(): Promise<number> }> {
  const worker = new Worker(new URL('./l1-set-worker.js', import.meta.url), { workerData: data })
  const reply = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    }).finally(() => worker.removeAllListeners('error'))
  await reply()
  return {
    name,
    run: (n: number) => {
      const done = reply()
      worker.postMessage(n)
      return done
    },
    close: () => worker.terminate(),
  }
}

/** Compares memcache's byte estimate with the heap growth of holding the same entries. */
function measureSizeAccuracy(n: number): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) return undefined
  gc()
  const before = process.memoryUsage().heapUsed
  const mem = createMemCache({ maxSize: 1024 * 1024 * 1024, cleanupInterval: 0 })
  const s = mem.namespace('size_probe')
  for (let i = 0; i < n; i++) s.setSync(`actor:${i}`, actorState(i))
  gc()
  const grown = process.memoryUsage().heapUsed - before
  const estimated = mem.stats().bytes
  return estimated / grown
}
