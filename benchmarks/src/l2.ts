import { createRedisBus, createRedisStore, type SingleClient } from '@actor-cache/redis'
import { createClient as createClient5 } from 'redis-client-5'
import { connectRedis } from './connect-redis.js'
import { awaitedCase, type BenchResult, compare, table } from './harness.js'
import { type L2Peers, openL2Peers } from './l2-peers.js'
import { actorState, zipfSequence } from './workload.js'

/** Options of the L2 suite. */
export interface L2Options {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  url?: string
  universe?: number
  rounds?: number
  log?: (line: string) => void
}

export interface L2Report {
  sequential: BenchResult[]
  concurrent: BenchResult[]
  batch: BenchResult[]
  /** store get / raw GET+parse throughput at 1 in flight (≥ 1.0 is the target). */
  sequentialRatio: number
  /** TieredCache (L2 only) get / raw GET+parse throughput at 1 in flight (≥ 1.0). */
  tieredSequentialRatio: number
  /** TieredCache (L2 only) get throughput over each peer's at 1 in flight (≥ 1.0). */
  overPeers: { cacheManager: number; bentocache: number }
  /** store get / raw GET+parse throughput at 64 in flight (≥ 0.9; stretch ≥ 2). */
  concurrentRatio: number
  /** getMany keys/s / raw MGET keys/s (≥ 0.9). */
  batchRatio: number
  bus: { raw: Percentiles; bus: Percentiles }
}

export interface Percentiles {
  p50: number
  p99: number
  max: number
}

const connect = (url: string): Promise<SingleClient> => connectRedis(url, 'L2')

const RAW_SEQ = 'node-redis GET + JSON.parse, 1 in flight'
const TIERED_SEQ = 'TieredCache (L2 only) ns.get, 1 in flight'
const CM_SEQ = 'cache-manager 7 (@keyv/redis) get, 1 in flight'
const BENTO_SEQ = 'bentocache (L2 only) get, 1 in flight'

/** L2 reads against raw node-redis, side by side; bus propagation against raw pub/sub. */
export async function runL2Suite(options: L2Options = {}): Promise<L2Report> {
  const log = options.log ?? console.log
  const url = options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const universe = options.universe ?? 10_000
  const rounds = options.rounds ?? 7
  const client = await connect(url)
  const prefix = `bench${process.pid}`
  const tier = createRedisStore({ client, prefix })
  const plain = createRedisStore({ client, prefix, coalesce: false })
  const store = tier.namespace('primary_core')
  const storeNoCoalesce = plain.namespace('primary_core')
  // The same length as the store's keys (`<prefix>:primary_core:actor:<i>`): a longer key costs
  // bytes on the wire in each request, which would count against the store.
  const rawKeys = Array.from({ length: universe }, (_, i) => `${prefix}:raw_baseline:actor:${i}`)
  const keys = Array.from({ length: universe }, (_, i) => `actor:${i}`)
  const progress = (what: string) => (r: number, total: number) =>
    process.stderr.write(`\r  ${what}: round ${r}/${total}`)
  const client5 = createClient5({ url, socket: { reconnectStrategy: false } })
  client5.on('error', () => {})
  await client5.connect()
  let peers: L2Peers | undefined
  try {
    process.stderr.write('  loading keys...')
    for (let i = 0; i < universe; i += 500) {
      const slice = keys.slice(i, i + 500)
      await store.setMany(slice.map((key, j) => ({ key, value: actorState(i + j) })))
      await client.sendCommand([
        'MSET',
        ...slice.flatMap((_, j) => [rawKeys[i + j] as string, JSON.stringify(actorState(i + j))]),
      ])
    }
    process.stderr.write(' peers...')
    peers = await openL2Peers(client, url, prefix, universe)
    const { tiered, cacheManager, bentocache } = peers
    const seq = zipfSequence(universe, 0.99, 1 << 16, 11)
    const mask = seq.length - 1
    const cursor = () => {
      let i = 0
      return () => seq[i++ & mask] as number
    }
    const rawGet = async (rank: number) => {
      const text = (await client.sendCommand(['GET', rawKeys[rank] as string])) as string | null
      return text === null ? undefined : JSON.parse(text)
    }
    const rawGet5 = async (rank: number) => {
      const text = (await client5.sendCommand(['GET', rawKeys[rank] as string])) as string | null
      return text === null ? undefined : JSON.parse(text)
    }

    log(`\n## L2 get (Redis at ${url}, ${universe.toLocaleString('en-US')} keys, Zipf 0.99)\n`)
    const seqCase = (name: string, get: (rank: number) => Promise<unknown>) =>
      awaitedCase(name, cursor(), get)
    const sequential = await compare(
      [
        seqCase('node-redis GET + JSON.parse, 1 in flight', rawGet),
        seqCase('RedisStore.get, 1 in flight', (r) => store.get(keys[r] as string)),
        seqCase(TIERED_SEQ, tiered),
        seqCase(CM_SEQ, cacheManager),
        seqCase(BENTO_SEQ, bentocache),
        seqCase('@redis/client 5 GET + JSON.parse, 1 in flight', rawGet5),
      ],
      { opsPerRound: 2_000, rounds, warmup: 1, onRound: progress('1 in flight') },
    )
    process.stderr.write('\n')
    log(table(sequential, 'node-redis GET + JSON.parse, 1 in flight'))

    const concCase = (name: string, get: (rank: number) => Promise<unknown>, inFlight = 64) => {
      const next = cursor()
      return {
        name,
        async run(n: number) {
          let hits = 0
          for (let done = 0; done < n; done += inFlight) {
            const batch = await Promise.all(Array.from({ length: inFlight }, () => get(next())))
            for (const v of batch) if (v !== undefined) hits++
          }
          return hits
        },
      }
    }
    log('')
    const concurrent = await compare(
      [
        concCase('node-redis GET + JSON.parse, 64 in flight', rawGet),
        concCase('RedisStore.get, 64 in flight (tick coalesced into MGET)', (r) =>
          store.get(keys[r] as string),
        ),
        concCase('RedisStore.get, 64 in flight (coalesce: false)', (r) =>
          storeNoCoalesce.get(keys[r] as string),
        ),
        concCase('TieredCache (L2 only) ns.get, 64 in flight', tiered),
        concCase('cache-manager 7 (@keyv/redis) get, 64 in flight', cacheManager),
        concCase('bentocache (L2 only) get, 64 in flight', bentocache),
      ],
      { opsPerRound: 32_000, rounds, warmup: 1, onRound: progress('64 in flight') },
    )
    process.stderr.write('\n')
    log(table(concurrent, 'node-redis GET + JSON.parse, 64 in flight'))

    log('\n## Batch get (100 keys per call; ns/op is per key)\n')
    const batchKeys = Array.from({ length: 100 }, (_, i) => keys.slice(i * 100, i * 100 + 100))
    const batchRaw = batchKeys.map((b, i) => b.map((_, j) => rawKeys[i * 100 + j] as string))
    let bi = 0
    let bj = 0
    const batch = await compare(
      [
        {
          name: 'node-redis MGET + JSON.parse',
          async run(n: number) {
            let c = 0
            for (let k = 0; k < n; k += 100) {
              const values = (await client.sendCommand([
                'MGET',
                ...(batchRaw[bi++ % 100] as string[]),
              ])) as (string | null)[]
              for (const v of values) if (v !== null && JSON.parse(v)) c++
            }
            return c
          },
        },
        {
          name: 'RedisStore.getMany',
          async run(n: number) {
            let c = 0
            for (let k = 0; k < n; k += 100) {
              const entries = await store.getMany(batchKeys[bj++ % 100] as string[])
              for (const e of entries) if (e) c++
            }
            return c
          },
        },
      ],
      { opsPerRound: 50_000, rounds, warmup: 1, onRound: progress('batch') },
    )
    process.stderr.write('\n')
    log(table(batch, 'node-redis MGET + JSON.parse'))

    log(
      '\n## Invalidation propagation (publish to delivery, same process, 2,000 messages 1 ms apart, interleaved)\n',
    )
    const bus = await measureBus(url, prefix)
    const fmt = (p: Percentiles) =>
      `p50 ${p.p50.toFixed(3)} ms, p99 ${p.p99.toFixed(3)} ms, max ${p.max.toFixed(3)} ms`
    log(`| raw pub/sub | ${fmt(bus.raw)} |`)
    log(`| RedisBus    | ${fmt(bus.bus)} |`)
    log(`bus p99 / raw p99 = ${(bus.bus.p99 / bus.raw.p99).toFixed(2)}x (target ≤ 2x)`)

    const ratio = (rs: BenchResult[], a: string, b: string) =>
      (rs.find((r) => r.name === b)?.nsPerOp ?? Number.NaN) /
      (rs.find((r) => r.name === a)?.nsPerOp ?? Number.NaN)
    const seqRate = (name: string) =>
      sequential.find((r) => r.name === name)?.opsPerSec ?? Number.NaN
    const report: L2Report = {
      tieredSequentialRatio: seqRate(TIERED_SEQ) / seqRate(RAW_SEQ),
      overPeers: {
        cacheManager: seqRate(TIERED_SEQ) / seqRate(CM_SEQ),
        bentocache: seqRate(TIERED_SEQ) / seqRate(BENTO_SEQ),
      },
      sequential,
      concurrent,
      batch,
      sequentialRatio: ratio(
        sequential,
        'RedisStore.get, 1 in flight',
        'node-redis GET + JSON.parse, 1 in flight',
      ),
      concurrentRatio: ratio(
        concurrent,
        'RedisStore.get, 64 in flight (tick coalesced into MGET)',
        'node-redis GET + JSON.parse, 64 in flight',
      ),
      batchRatio: ratio(batch, 'RedisStore.getMany', 'node-redis MGET + JSON.parse'),
      bus,
    }
    log(
      `\nat 1 in flight, TieredCache (L2 only) ns.get: ${report.tieredSequentialRatio.toFixed(2)}x raw node-redis (target ≥ 1.0x), ` +
        `${report.overPeers.cacheManager.toFixed(2)}x cache-manager, ${report.overPeers.bentocache.toFixed(2)}x bentocache (targets ≥ 1.0x)`,
    )
    log(
      `throughput vs raw node-redis: RedisStore.get at 1 in flight ${report.sequentialRatio.toFixed(2)}x (target ≥ 1.0x), ` +
        `at 64 in flight ${report.concurrentRatio.toFixed(2)}x (target ≥ 0.9x, stretch ≥ 2x), getMany ${report.batchRatio.toFixed(2)}x (target ≥ 0.9x)`,
    )
    return report
  } finally {
    await peers?.close().catch(() => undefined)
    await client5.close().catch(() => undefined)
    await tier
      .namespace('primary_core')
      .clear()
      .catch(() => undefined)
    await client.sendCommand(['UNLINK', ...rawKeys.slice(0, 1)]).catch(() => undefined)
    for (let i = 0; i < rawKeys.length; i += 1000)
      await client.sendCommand(['UNLINK', ...rawKeys.slice(i, i + 1000)]).catch(() => undefined)
    await client.close()
  }
}

const percentiles = (xs: number[]): Percentiles => {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number
  return { p50: at(0.5), p99: at(0.99), max: s.at(-1) as number }
}

async function measureBus(
  url: string,
  prefix: string,
): Promise<{ raw: Percentiles; bus: Percentiles }> {
  const n = 2000
  const pub = await connect(url)
  const sub = await connect(url)
  const rawLat: number[] = []
  await sub.subscribe(`${prefix}:raw-channel`, (message) => {
    rawLat.push(performance.now() - Number(message))
  })
  const busLat: number[] = []
  const sender = createRedisBus({ client: pub, prefix, instanceId: 'sender' })
  const receiverClient = await connect(url)
  const receiver = createRedisBus({ client: receiverClient, prefix, instanceId: 'receiver' })
  const sentAt = new Map<string, number>()
  receiver.subscribe({
    onInvalidate: (m) => {
      const t = sentAt.get(m.keys?.[0] ?? '')
      if (t !== undefined) busLat.push(performance.now() - t)
    },
    onReset: () => {},
  })
  await receiver.start()
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  // interleave the two so both see the same machine conditions
  for (let i = 0; i < n; i++) {
    await pub.sendCommand(['PUBLISH', `${prefix}:raw-channel`, String(performance.now())])
    const key = `actor:${i}`
    sentAt.set(key, performance.now())
    await sender.publish({ namespace: 'primary_core', keys: [key] })
    await sleep(1)
  }
  await sleep(100)
  process.stderr.write(`  bus: ${busLat.length}/${n} delivered, raw: ${rawLat.length}/${n}\n`)
  await Promise.all([sender.close(), receiver.close()])
  await Promise.all([pub.close(), sub.close(), receiverClient.close()])
  return { raw: percentiles(rawLat), bus: percentiles(busLat) }
}
