/**
 * R13: model-based test of TieredCache with a fake clock. Random command sequences run against
 * the real cache and against a model of what its documentation promises, built from plain Maps;
 * every answer (values, loader calls, set versions, delete results, has, getTTL) must agree.
 *
 * What the model says:
 * - Cache entries. `set` and every load or record read leave an entry that expires at
 *   `now + life`: life is the set's `ttl` (no expiry for `Infinity`), else the namespace ttl
 *   jittered as documented, `ttl × (1 − jitter × random)`. An entry is served while
 *   `now < expiresAt` and none of its tags was invalidated after it was written. "After" is the
 *   order of the calls, also within one millisecond: an invalidation covers the writes before it
 *   and none after it. Invalidating keys, patterns or the namespace, and `delete`, drop entries.
 * - Reads (get, getOrSet, getMany): a fresh entry; else a remembered "not found" (for
 *   `negativeTtl`); else the store of record's value (cached again); else one loader call (the
 *   namespace's, or getOrSet's) whose value is cached, never recorded.
 * - `record: false` (L3 is a cache tier): the loader over the `source` map is the truth; `set` and
 *   `delete` touch only the caches.
 * - Default record (L3 is the store of record, write_through): `set` records the value with
 *   versions 1, 2, ... (a deleted key starts again at 1); invalidations never touch the record,
 *   so a read after an invalidation still answers the recorded value.
 * - A restart (a new process: new L1 and TieredCache over the same Redis and PostgreSQL) keeps
 *   what the shared tiers hold, tag invalidation times included, and forgets the negative cache;
 *   with L1 only it forgets everything.
 *
 * The fake clock starts at the real time and only moves forward, and the shortest life written to
 * Redis or PostgreSQL (5 s) is long compared with a run, so those tiers (which expire by their own
 * real clocks) never drop an entry before the fake clock says so; the cache itself checks expiry
 * with the fake clock. Each run has its own clock, cache, namespace and Redis prefix.
 */
import { type CacheStore, glob } from '@actor-cache/core'
import { createMemCache, type MemCache } from '@actor-cache/memcache'
import { createPrismaStore, type PrismaTier } from '@actor-cache/prisma-store'
import { type AnyRedisClient, createRedisStore } from '@actor-cache/redis'
import { assertReplayable, longTimeout as timeout } from '@actor-cache/test-utils/property'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, it } from 'vitest'
import {
  createTieredCache,
  type InvalidationTarget,
  type NamespacePolicy,
  type TieredCache,
  type TieredNamespace,
} from '../src/index.js'
import { dropPrefix, fakeClock, postgres, redis, type TestDb, uid } from './helpers.js'

// ---------------------------------------------------------------------------------------------
// Vocabulary: few keys (some with glob metacharacters) so that commands collide
// ---------------------------------------------------------------------------------------------

interface Val {
  readonly n: number
}

const KEYS = ['k1', 'k2', 'k*', 'k?[1]', 'x\\k'] as const
const TAGS = ['t1', 't2'] as const
/** User text put into patterns with `glob`: it must only ever match itself. */
const FRAGMENTS = ['k', 'k1', 'k2', 'k*', '*', '?', '1', '[1]', '1]', 'k?', '\\', 'x', 'x\\k']
const FORMS = ['prefix', 'suffix', 'contains', 'exact'] as const
type Form = (typeof FORMS)[number]

/** Namespace ttl, jitter and the cache's random(): the default life is exactly 7_500 ms. */
const TTL = 10_000
const JITTER = 0.5
const RANDOM = 0.5
const DEFAULT_LIFE = TTL * (1 - JITTER * RANDOM)
const NEGATIVE_TTL = 3_000
/** Clock steps around the lives in play (3_000, 5_000, 7_500, 10_000, 20_000). */
const ADVANCES = [
  1, 999, 2_999, 3_000, 3_001, 4_999, 5_000, 5_001, 7_499, 7_500, 7_501, 9_999, 10_000, 10_001,
  20_000,
]
const SET_TTLS = [undefined, 5_000, 10_000, 20_000, Infinity] as const
const NEW_TTLS = [3_000, 10_000, Infinity] as const

interface Config {
  /** `l1`: memcache only; `all`: memcache + Redis + PostgreSQL. */
  tiers: 'l1' | 'all'
  /** L3 is the store of record (the default) rather than a cache tier (`record: false`). */
  record: boolean
  /** The namespace has a loader reading the source (otherwise only getOrSet loads). */
  loader: boolean
  negativeTtl: number
  /**
   * `write_behind` (with a record): reads answer the latest acknowledged write as with
   * write-through, versions only have to grow, and after each `flush` PostgreSQL must hold what
   * the model's record holds. Restarts close the cache gracefully (which flushes).
   */
  writeBehind?: boolean
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/** Invalidations go through `cache.invalidate` or the namespace's `invalidate`/`clear`. */
type Via = 'cache' | 'namespace'

type Op =
  | { kind: 'get'; key: string }
  | { kind: 'getOrSet'; key: string }
  | { kind: 'getMany'; keys: string[] }
  | { kind: 'has'; key: string }
  | { kind: 'getTTL'; key: string }
  | { kind: 'set'; key: string; n: number; ttl: number | undefined; tags: string[] }
  | { kind: 'setTTL'; key: string; ttl: number }
  | { kind: 'delete'; key: string }
  | { kind: 'advance'; ms: number }
  | { kind: 'invalidateKey'; key: string; via: Via }
  | { kind: 'invalidatePattern'; form: Form; text: string; via: Via }
  | { kind: 'invalidateTag'; tag: string; via: Via }
  | { kind: 'clear'; via: Via }
  | { kind: 'source'; key: string; n: number | undefined }
  | { kind: 'restart' }
  | { kind: 'flush' }

const q = (s: string): string => JSON.stringify(s)

function invalidation(op: Op & { via: Via }, target: string): string {
  return op.via === 'cache' ? `cache.invalidate(${target})` : `ns.invalidate(${target})`
}

function show(op: Op): string {
  switch (op.kind) {
    case 'get':
    case 'getOrSet':
    case 'has':
    case 'getTTL':
    case 'delete':
      return `${op.kind}(${q(op.key)})`
    case 'getMany':
      return `getMany([${op.keys.map(q).join(', ')}])`
    case 'set': {
      const opts = [
        ...(op.ttl === undefined ? [] : [`ttl: ${op.ttl}`]),
        ...(op.tags.length === 0 ? [] : [`tags: [${op.tags.map(q).join(', ')}]`]),
      ]
      return `set(${q(op.key)}, {n:${op.n}}${opts.length === 0 ? '' : `, { ${opts.join(', ')} }`})`
    }
    case 'setTTL':
      return `setTTL(${q(op.key)}, ${op.ttl})`
    case 'advance':
      return `advance(${op.ms})`
    case 'invalidateKey':
      return invalidation(op, `{ keys: [${q(op.key)}] }`)
    case 'invalidatePattern':
      return `${invalidation(op, `{ patterns: [${q(pattern(op.form, op.text))}] }`)} /* ${op.form} of ${q(op.text)} */`
    case 'invalidateTag':
      return invalidation(op, `{ tags: [${q(op.tag)}] }`)
    case 'clear':
      return op.via === 'cache' ? 'cache.invalidate({ all: true })' : 'ns.clear()'
    case 'source':
      return `source[${q(op.key)}] = ${op.n === undefined ? 'undefined' : `{n:${op.n}}`}`
    case 'restart':
      return 'restart()'
    case 'flush':
      return 'flush()'
  }
}

/** A pattern built from user text with `glob`. */
function pattern(form: Form, text: string): string {
  switch (form) {
    case 'prefix':
      return glob`${text}*`
    case 'suffix':
      return glob`*${text}`
    case 'contains':
      return glob`*${text}*`
    case 'exact':
      return glob`${text}`
  }
}

/** What the pattern means: the user text taken literally. */
function matches(form: Form, text: string, key: string): boolean {
  switch (form) {
    case 'prefix':
      return key.startsWith(text)
    case 'suffix':
      return key.endsWith(text)
    case 'contains':
      return key.includes(text)
    case 'exact':
      return key === text
  }
}

const key = fc.constantFrom(...KEYS)
const value = fc.integer({ min: 0, max: 9_999 })
const via = fc.constantFrom<Via>('cache', 'namespace')

function opArbitraries(config: Config): fc.Arbitrary<Op>[] {
  const get = key.map((k): Op => ({ kind: 'get', key: k }))
  const set = fc
    .record({ key, n: value, ttl: fc.constantFrom(...SET_TTLS), tags: fc.subarray([...TAGS]) })
    .map((r): Op => ({ kind: 'set', ...r }))
  const advance = fc.constantFrom(...ADVANCES).map((ms): Op => ({ kind: 'advance', ms }))
  return [
    get,
    get,
    key.map((k): Op => ({ kind: 'getOrSet', key: k })),
    fc.array(key, { minLength: 1, maxLength: 4 }).map((keys): Op => ({ kind: 'getMany', keys })),
    fc.record({ kind: fc.constantFrom('has' as const, 'getTTL' as const), key }).map((r): Op => r),
    set,
    set,
    key.map((k): Op => ({ kind: 'delete', key: k })),
    advance,
    advance,
    fc.record({ key, via }).map((r): Op => ({ kind: 'invalidateKey', ...r })),
    fc
      .record({ form: fc.constantFrom(...FORMS), text: fc.constantFrom(...FRAGMENTS), via })
      .map((r): Op => ({ kind: 'invalidatePattern', ...r })),
    fc
      .record({ tag: fc.constantFrom(...TAGS), via })
      .map((r): Op => ({ kind: 'invalidateTag', ...r })),
    via.map((v): Op => ({ kind: 'clear', via: v })),
    fc
      .record({ key, n: fc.option(value, { nil: undefined }) })
      .map((r): Op => ({ kind: 'source', ...r })),
    fc.constant<Op>({ kind: 'restart' }),
    ...(config.writeBehind
      ? [fc.constant<Op>({ kind: 'flush' }), fc.constant<Op>({ kind: 'flush' })]
      : []),
    // Redis and PostgreSQL compute a new TTL from their real clocks: memcache only
    ...(config.tiers === 'l1'
      ? [
          fc
            .record({ key, ttl: fc.constantFrom(...NEW_TTLS) })
            .map((r): Op => ({ kind: 'setTTL', ...r })),
        ]
      : []),
  ]
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

interface Entry {
  value: Val
  /** When it was written, in the order of events (writes and tag invalidations). */
  written: number
  expiresAt: number | null
  tags: readonly string[]
}

interface Model {
  readonly config: Config
  readonly start: number
  now: number
  /** The newest entry the cache tiers hold per key (possibly expired or tag-stale). */
  cache: Map<string, Entry>
  /** The store of record (record configurations only). */
  record: Map<string, { value: Val; version: number; tags: readonly string[] }>
  /** What the loader returns. */
  source: Map<string, Val>
  /** Order of the last event (a write or a tag invalidation). */
  events: number
  /** When each tag was last invalidated, in the order of events. */
  tagEvents: Map<string, number>
  /** Remembered "not found" per key: until when. */
  negative: Map<string, number>
  loads: number
  /** write_behind: the last version each key's write got (versions must keep growing). */
  versions: Map<string, number>
  /**
   * write_behind: keys written or deleted since the last flush, and whether an invalidation hit
   * them meanwhile (a set so hit is invalidated again once flushed, as documented).
   */
  unflushed: Map<string, { op: 'set' | 'delete'; invalidated: boolean; tags: readonly string[] }>
  /** The model before the current command, for failure messages. */
  before?: string
}

function expiry(m: Model, ttl: number | undefined): number | null {
  if (ttl === Infinity) return null
  return m.now + (ttl ?? DEFAULT_LIFE)
}

const expired = (m: Model, e: Entry): boolean => e.expiresAt !== null && m.now >= e.expiresAt

function fresh(m: Model, k: string): Entry | undefined {
  const e = m.cache.get(k)
  if (e === undefined || expired(m, e)) return undefined
  if (e.tags.some((t) => (m.tagEvents.get(t) ?? 0) > e.written)) return undefined
  return e
}

/** One read as documented: fresh entry, else remembered miss, else record, else loader. */
function modelRead(m: Model, k: string, withLoader: boolean): Val | undefined {
  const e = fresh(m, k)
  if (e !== undefined) return e.value
  const until = m.negative.get(k)
  if (until !== undefined) {
    if (until > m.now) return undefined
    m.negative.delete(k)
  }
  const rec = m.record.get(k)
  if (rec !== undefined) {
    const { value, tags } = rec
    m.cache.set(k, { value, written: ++m.events, expiresAt: expiry(m, undefined), tags })
    return value
  }
  if (!withLoader) return undefined
  m.loads++
  const v = m.source.get(k)
  if (v === undefined) {
    if (m.config.negativeTtl > 0) m.negative.set(k, m.now + m.config.negativeTtl)
    return undefined
  }
  m.cache.set(k, { value: v, written: ++m.events, expiresAt: expiry(m, undefined), tags: [] })
  return v
}

/** An invalidation reached the keys `hit` selects: unflushed ones remember it. */
function hitUnflushed(m: Model, hit: (k: string) => boolean): void {
  for (const [k, u] of m.unflushed) if (hit(k)) u.invalidated = true
}

/** Everything is flushed: a set an invalidation hit while queued is invalidated again. */
function flushedModel(m: Model): void {
  for (const [k, u] of m.unflushed) if (u.op === 'set' && u.invalidated) m.cache.delete(k)
  m.unflushed.clear()
}

function describeModel(m: Model): string {
  const t = (x: number | null): string => (x === null ? 'never' : `+${x - m.start}`)
  const lines = [`clock +${m.now - m.start}`]
  for (const [k, e] of m.cache) {
    const tags = e.tags.length === 0 ? '' : ` tags ${e.tags.join(',')}`
    const state = fresh(m, k) === undefined ? 'dead' : 'fresh'
    lines.push(
      `cache ${q(k)} = {n:${e.value.n}} written #${e.written} expires ${t(e.expiresAt)}${tags} (${state})`,
    )
  }
  for (const [k, r] of m.record) lines.push(`record ${q(k)} = {n:${r.value.n}} v${r.version}`)
  for (const [k, v] of m.source) lines.push(`source ${q(k)} = {n:${v.n}}`)
  for (const [tag, at] of m.tagEvents) lines.push(`tag ${tag} invalidated #${at}`)
  for (const [k, until] of m.negative) lines.push(`"not found" ${q(k)} until ${t(until)}`)
  lines.push(`loader calls ${m.loads}`)
  return lines.join('\n    ')
}

// ---------------------------------------------------------------------------------------------
// The real system
// ---------------------------------------------------------------------------------------------

interface Shared {
  client: AnyRedisClient
  l3: PrismaTier
  /** Redis prefix base: every run gets `<base>-<run>` (tag times live under the prefix too). */
  base: string
}

interface Real {
  readonly clock: { now: () => number; advance: (ms: number) => void }
  readonly source: Map<string, Val>
  loads: number
  cache: TieredCache
  ns: TieredNamespace<Val>
  /** A new process: new L1 and TieredCache over the same shared tiers. */
  restart(): Promise<void>
  /** The namespace's store in PostgreSQL. */
  record(): CacheStore<Val>
  close(): Promise<void>
}

let runs = 0

function startReal(config: Config, shared: Shared | undefined, initial: Map<string, Val>): Real {
  const run = ++runs
  const name = `model${run}`
  const clock = fakeClock()
  const prefix = `${shared?.base}-${run}`
  const l2 = shared && createRedisStore({ client: shared.client, prefix })
  const loader = (k: string): Val | undefined => {
    real.loads++
    return real.source.get(k)
  }
  const policy: NamespacePolicy<Val> = {
    ...(config.writeBehind ? { strategy: 'write_behind' as const } : {}),
    ttl: TTL,
    jitter: JITTER,
    negativeTtl: config.negativeTtl,
    ...(config.record ? {} : { record: false as const }),
    ...(config.loader ? { loader } : {}),
  }
  let l1: MemCache
  const open = (): Pick<Real, 'cache' | 'ns'> => {
    l1 = createMemCache({ now: clock.now })
    const cache = createTieredCache({
      l1,
      ...(shared === undefined ? {} : { l2, l3: shared.l3 }),
      now: clock.now,
      random: () => RANDOM,
      writeBehind: { autoStart: false },
    })
    return { cache, ns: cache.namespace<Val>(name, policy) }
  }
  const real: Real = {
    clock,
    source: new Map(initial),
    loads: 0,
    ...open(),
    record: () => (shared as Shared).l3.namespace<Val>(name),
    async restart() {
      await real.cache.close()
      await l1.close()
      clock.advance(1) // a restart takes time: nothing else happens in the same millisecond
      Object.assign(real, open())
    },
    async close() {
      await real.cache.close()
      await l1.close()
      if (shared !== undefined) await dropPrefix(shared.client, prefix)
    },
  }
  return real
}

// ---------------------------------------------------------------------------------------------
// One command, on the model and on the cache
// ---------------------------------------------------------------------------------------------

const fmt = (v: unknown): string =>
  v === undefined ? 'undefined' : v === Infinity ? 'Infinity' : JSON.stringify(v)

function same(a: unknown, b: unknown): boolean {
  return fmt(a) === fmt(b)
}

function diverged(m: Model, what: string, expected: unknown, actual: unknown): Error {
  return new Error(
    `divergence in ${what}: the model expected ${fmt(expected)}, the cache returned ${fmt(actual)}\n  model before the command:\n    ${m.before}`,
  )
}

function invalidate(r: Real, op: Op & { via: Via }, target: InvalidationTarget): Promise<void> {
  const { namespace: _n, ...rest } = target
  return op.via === 'cache'
    ? r.cache.invalidate({ ...target, namespace: r.ns.name })
    : r.ns.invalidate(rest)
}

async function step(m: Model, r: Real, op: Op): Promise<void> {
  m.before = describeModel(m)
  const ns = r.ns
  const expect = (what: string, expected: unknown, actual: unknown): void => {
    if (!same(actual, expected)) throw diverged(m, what, expected, actual)
  }
  switch (op.kind) {
    case 'get':
      expect(show(op), modelRead(m, op.key, m.config.loader), await ns.get(op.key))
      break
    case 'getOrSet': {
      const expected = modelRead(m, op.key, true)
      const actual = await ns.getOrSet(op.key, (k) => {
        r.loads++
        return r.source.get(k)
      })
      expect(show(op), expected, actual)
      break
    }
    case 'getMany': {
      const byKey = new Map<string, Val | undefined>()
      for (const k of op.keys) if (!byKey.has(k)) byKey.set(k, modelRead(m, k, m.config.loader))
      expect(
        show(op),
        op.keys.map((k) => byKey.get(k)),
        await ns.getMany(op.keys),
      )
      break
    }
    case 'has':
    case 'getTTL': {
      // no loader call, no backfill: a fresh cached entry, else the record's (never expires)
      const e = fresh(m, op.key)
      const ttl =
        e !== undefined
          ? e.expiresAt === null
            ? Infinity
            : e.expiresAt - m.now
          : m.record.has(op.key)
            ? Infinity
            : undefined
      if (op.kind === 'has') expect(show(op), ttl !== undefined, await ns.has(op.key))
      else expect(show(op), ttl, await ns.getTTL(op.key))
      break
    }
    case 'set': {
      const value = { n: op.n }
      m.negative.delete(op.key)
      let version: number | undefined
      if (m.config.record) {
        version = (m.record.get(op.key)?.version ?? 0) + 1
        m.record.set(op.key, { value, version, tags: op.tags })
      }
      if (m.config.writeBehind) version = undefined
      m.cache.set(op.key, {
        value,
        written: ++m.events,
        expiresAt: expiry(m, op.ttl),
        tags: op.tags,
      })
      const result = await ns.set(op.key, value, {
        ...(op.ttl === undefined ? {} : { ttl: op.ttl }),
        ...(op.tags.length === 0 ? {} : { tags: op.tags }),
      })
      // without a record (or with write-behind), versions come from the cache tiers or the clock:
      // any positive one will do, above the key's previous one with write-behind
      const previous = m.versions.get(op.key) ?? 0
      const ok = m.config.writeBehind ? result.version > previous : result.version >= 1
      const v = version ?? (ok ? result.version : `a version above ${previous}`)
      expect(`${show(op)} result`, { applied: true, version: v }, result)
      m.versions.set(op.key, result.version)
      if (m.config.writeBehind) {
        m.unflushed.set(op.key, { op: 'set', invalidated: false, tags: op.tags })
      }
      break
    }
    case 'setTTL': {
      // a live entry gets the new life; an expired or invalidated one none
      const e = fresh(m, op.key)
      if (e !== undefined) e.expiresAt = expiry(m, op.ttl)
      expect(`${show(op)} result`, e !== undefined, await ns.setTTL(op.key, op.ttl))
      break
    }
    case 'delete': {
      const wasFresh = fresh(m, op.key) !== undefined
      const existed = m.config.record ? m.record.has(op.key) : undefined
      m.record.delete(op.key)
      m.cache.delete(op.key)
      if (m.config.writeBehind) {
        m.unflushed.set(op.key, { op: 'delete', invalidated: false, tags: [] })
      }
      const actual = await ns.delete(op.key)
      // with a record: whether it had the key; without one, only promised for a live entry
      if (existed !== undefined) expect(`${show(op)} result`, existed, actual)
      else if (wasFresh) expect(`${show(op)} result`, true, actual)
      break
    }
    case 'advance':
      m.now += op.ms
      r.clock.advance(op.ms)
      break
    case 'invalidateKey':
      hitUnflushed(m, (k) => k === op.key)
      m.cache.delete(op.key)
      m.negative.delete(op.key)
      await invalidate(r, op, { keys: [op.key] })
      break
    case 'invalidatePattern':
      hitUnflushed(m, (k) => matches(op.form, op.text, k))
      for (const k of [...m.cache.keys()]) if (matches(op.form, op.text, k)) m.cache.delete(k)
      // the cache forgets every remembered "not found" of the namespace (harmless excess)
      m.negative.clear()
      await invalidate(r, op, { patterns: [pattern(op.form, op.text)] })
      break
    case 'invalidateTag':
      for (const u of m.unflushed.values()) if (u.tags.includes(op.tag)) u.invalidated = true
      m.tagEvents.set(op.tag, ++m.events)
      await invalidate(r, op, { tags: [op.tag] })
      break
    case 'clear':
      hitUnflushed(m, () => true)
      m.cache.clear()
      m.negative.clear()
      if (op.via === 'cache') await r.cache.invalidate({ namespace: ns.name, all: true })
      else await ns.clear()
      break
    case 'source':
      for (const s of [m.source, r.source]) {
        if (op.n === undefined) s.delete(op.key)
        else s.set(op.key, { n: op.n })
      }
      break
    case 'restart':
      flushedModel(m) // a graceful close flushes
      m.now += 1
      m.negative.clear()
      if (m.config.tiers === 'l1') {
        m.cache.clear()
        m.tagEvents.clear()
      }
      await r.restart()
      break
    case 'flush': {
      flushedModel(m)
      await r.cache.flush()
      // PostgreSQL now holds the last acknowledged write of every key
      const rows = await r.record().getMany([...KEYS])
      expect(
        'PostgreSQL after flush()',
        KEYS.map((k) => m.record.get(k)?.value),
        rows.map((e) => e?.value),
      )
      break
    }
  }
  if (r.loads !== m.loads) throw diverged(m, `loader calls after ${show(op)}`, m.loads, r.loads)
  if (r.clock.now() !== m.now) throw new Error('test bug: the clocks went apart')
  // A read answers before its loaded value's fill lands; the model has each command done
  // before the next (a fill racing a later command is covered by the fill-guard tests).
  await r.cache.settle()
}

class Cmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly op: Op) {}
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): Promise<void> {
    return step(m, r, this.op)
  }
  toString(): string {
    return show(this.op)
  }
}

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

/** One run: a new cache and model, then `cmds` on both. */
async function runOnce(
  config: Config,
  shared: Shared | undefined,
  initial: Map<string, Val>,
  cmds: Iterable<fc.AsyncCommand<Model, Real>>,
): Promise<void> {
  const real = startReal(config, shared, initial)
  try {
    await fc.asyncModelRun(
      () => ({
        model: {
          config,
          start: real.clock.now(),
          now: real.clock.now(),
          cache: new Map(),
          record: new Map(),
          source: new Map(initial),
          events: 0,
          tagEvents: new Map(),
          negative: new Map(),
          loads: 0,
          versions: new Map(),
          unflushed: new Map(),
        },
        real,
      }),
      cmds,
    )
  } finally {
    await real.close()
    // A run without I/O never leaves the current job, and V8 keeps every WeakRef target (memcache's
    // sweep timer holds its cache by one) alive until the job ends: end it, or long runs fill the heap.
    await new Promise((resolve) => setImmediate(resolve))
  }
}

async function check(
  config: Config,
  shared: Shared | undefined,
  options: { numRuns: number; maxCommands: number },
): Promise<void> {
  const initialSource = fc
    .array(fc.tuple(key, value), { maxLength: KEYS.length })
    .map((pairs) => new Map(pairs.map(([k, n]) => [k, { n }] as const)))
  // unbiased: fast-check would otherwise begin with very short sequences
  const commands = fc.noBias(
    fc.commands(
      opArbitraries(config).map((a) => a.map((op) => new Cmd(op))),
      { maxCommands: options.maxCommands, size: 'max' },
    ),
  )
  const property = fc.asyncProperty(initialSource, commands, (initial, cmds) =>
    runOnce(config, shared, initial, cmds),
  )
  await assertReplayable(property, options.numRuns)
}

/** A fixed sequence, kept from a counterexample: it must keep passing. */
function fixed(
  config: Config,
  shared: () => Shared | undefined,
  initial: Record<string, number>,
  ops: Op[],
): Promise<void> {
  const source = new Map(Object.entries(initial).map(([k, n]) => [k, { n }] as const))
  return runOnce(
    config,
    shared(),
    source,
    ops.map((op) => new Cmd(op)),
  )
}

// The timeouts only bound a hang: runs are fixed in number, and a 2-core machine running several
// suites at once takes ten times longer than an idle one.
describe('R13: TieredCache against a model, L1 only (memcache)', () => {
  it(
    'with a namespace loader',
    async () => {
      await check({ tiers: 'l1', record: false, loader: true, negativeTtl: 0 }, undefined, {
        numRuns: 15_000,
        maxCommands: 30,
      })
    },
    timeout(600_000),
  )

  it(
    'with a namespace loader and negative caching',
    async () => {
      await check(
        { tiers: 'l1', record: false, loader: true, negativeTtl: NEGATIVE_TTL },
        undefined,
        { numRuns: 15_000, maxCommands: 30 },
      )
    },
    timeout(600_000),
  )

  it(
    'without a loader (only getOrSet loads)',
    async () => {
      await check({ tiers: 'l1', record: false, loader: false, negativeTtl: 0 }, undefined, {
        numRuns: 15_000,
        maxCommands: 30,
      })
    },
    timeout(600_000),
  )
})

describe('R13: TieredCache against a model, L1 + Redis + PostgreSQL', () => {
  let db: TestDb
  let shared: Shared

  beforeAll(async () => {
    db = await postgres()
    const client = await redis()
    shared = { client, l3: createPrismaStore({ prisma: db.prisma }), base: `acm${uid()}` }
  })
  afterAll(async () => {
    await shared?.client.close()
    await db?.drop()
  })

  it(
    'record: false — L3 is a cache tier, the loader is the source of truth',
    async () => {
      await check({ tiers: 'all', record: false, loader: true, negativeTtl: 0 }, shared, {
        numRuns: 2_000,
        maxCommands: 20,
      })
    },
    timeout(1_200_000),
  )

  it(
    'default record — L3 is the store of record (write_through)',
    async () => {
      await check({ tiers: 'all', record: true, loader: false, negativeTtl: 0 }, shared, {
        numRuns: 2_000,
        maxCommands: 20,
      })
    },
    timeout(1_200_000),
  )

  it(
    'write_behind — the flusher persists to PostgreSQL, reads see every acknowledged write',
    async () => {
      await check(
        { tiers: 'all', record: true, loader: false, negativeTtl: 0, writeBehind: true },
        shared,
        { numRuns: 1_500, maxCommands: 20 },
      )
    },
    timeout(1_200_000),
  )

  it(
    'write_behind with a namespace loader and negative caching',
    async () => {
      await check(
        {
          tiers: 'all',
          record: true,
          loader: true,
          negativeTtl: NEGATIVE_TTL,
          writeBehind: true,
        },
        shared,
        { numRuns: 1_000, maxCommands: 20 },
      )
    },
    timeout(1_200_000),
  )

  it('fixed: a set after a reload over an expired loaded copy is cached at the record version', async () => {
    // A loaded value's versions count loads while the record lacks the key (here 2, after a
    // reload over the expired copy); the set then records version 1, which the caches once
    // refused, leaving no cached copy (getTTL answered the record's Infinity).
    const config = { tiers: 'all', record: true, loader: true, negativeTtl: NEGATIVE_TTL } as const
    await fixed(config, () => shared, { k2: 0 }, [
      { kind: 'getOrSet', key: 'k2' },
      { kind: 'advance', ms: 7_500 },
      { kind: 'getMany', keys: ['k2'] },
      { kind: 'set', key: 'k2', n: 0, ttl: undefined, tags: [] },
      { kind: 'getTTL', key: 'k2' },
    ])
  })

  it(
    'default record, with a namespace loader and negative caching',
    async () => {
      await check({ tiers: 'all', record: true, loader: true, negativeTtl: NEGATIVE_TTL }, shared, {
        numRuns: 1_000,
        maxCommands: 20,
      })
    },
    timeout(1_200_000),
  )
})
