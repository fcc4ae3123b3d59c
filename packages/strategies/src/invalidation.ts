import {
  type CacheStore,
  glob,
  type InvalidationConfig,
  type InvalidationMessage,
  InvalidKeyError,
  InvalidOptionError,
  validateInvalidationMessage,
} from '@actor-cache/core'

/** What to invalidate in one call of {@link TieredCache.invalidate}. */
export interface InvalidationTarget {
  /** Namespace of `keys`, `patterns` and `all`. */
  namespace?: string
  /** Drop the whole namespace. */
  all?: boolean
  /** Exact keys. */
  keys?: readonly string[]
  /** Glob patterns over keys of the namespace (build them from user text with `glob`). */
  patterns?: readonly string[]
  /** Entries carrying any of these tags, in every namespace. */
  tags?: readonly string[]
}

/** Reserved namespace in the shared tier where tag invalidation times live. */
export const TAG_NAMESPACE = 'actor-cache.tags'

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g

function param(template: string, params: Readonly<Record<string, string>>, name: string): string {
  const value = Object.hasOwn(params, name) ? params[name] : undefined
  if (typeof value !== 'string') {
    throw new InvalidOptionError(
      `params.${name}`,
      `the rule "${template}" needs a string parameter "${name}"`,
    )
  }
  return value
}

function fill(template: string, params: Readonly<Record<string, string>>, asGlob: boolean): string {
  if (!asGlob)
    return template.replace(PLACEHOLDER, (_m, name: string) => param(template, params, name))
  // patterns go through `glob`, which escapes values and refuses placements it cannot protect
  const strings: string[] = []
  const values: string[] = []
  let last = 0
  for (const m of template.matchAll(PLACEHOLDER)) {
    strings.push(template.slice(last, m.index))
    values.push(param(template, params, m[1] as string))
    last = m.index + m[0].length
  }
  strings.push(template.slice(last))
  return glob(
    Object.assign(strings, { raw: strings }) as unknown as TemplateStringsArray,
    ...values,
  )
}

/**
 * Expands the config's event rules: `{name}` placeholders take `params[name]`, escaped as glob
 * literals inside patterns (so user text never widens a pattern).
 * @throws {InvalidOptionError} for an unknown event or a missing parameter
 * @throws {InvalidKeyError} when a filled-in key or tag is invalid
 */
export function expandEvent(
  config: InvalidationConfig | undefined,
  event: string,
  params: Readonly<Record<string, string>>,
): InvalidationMessage[] {
  const rules = config?.events[event]
  if (rules === undefined || !Object.hasOwn(config?.events ?? {}, event)) {
    throw new InvalidOptionError('event', `no invalidation rule for event ${JSON.stringify(event)}`)
  }
  return rules.map((rule) => {
    const out: InvalidationMessage = {}
    if (rule.namespace !== undefined) out.namespace = rule.namespace
    if (rule.all) out.all = true
    if (rule.keys) out.keys = rule.keys.map((k) => fill(k, params, false))
    if (rule.patterns) out.patterns = rule.patterns.map((p) => fill(p, params, true))
    if (rule.tags) out.tags = rule.tags.map((t) => fill(t, params, false))
    return validateInvalidationMessage(out)
  })
}

/** Namespaces that depend on each namespace, transitively (reverse of `dependencies`). */
export function dependents(config: InvalidationConfig | undefined): Map<string, string[]> {
  const direct = new Map<string, Set<string>>()
  for (const [derived, sources] of Object.entries(config?.dependencies ?? {})) {
    for (const source of sources) {
      const set = direct.get(source) ?? new Set<string>()
      set.add(derived)
      direct.set(source, set)
    }
  }
  const out = new Map<string, string[]>()
  for (const source of direct.keys()) {
    const seen = new Set<string>()
    const stack = [...(direct.get(source) ?? [])]
    while (stack.length > 0) {
      const next = stack.pop() as string
      if (seen.has(next) || next === source) continue
      seen.add(next)
      stack.push(...(direct.get(next) ?? []))
    }
    out.set(source, [...seen])
  }
  return out
}

/** Validates a target from code (same rules as bus messages). */
export function validateTarget(target: InvalidationTarget): InvalidationMessage {
  if (typeof target !== 'object' || target === null) {
    throw new InvalidKeyError('an invalidation target must be an object')
  }
  return validateInvalidationMessage(target)
}

/**
 * Fraction of a millisecond that orders a write after an invalidation of the same millisecond.
 * Times stay within their millisecond (1024 steps), so other instances' clocks still compare at
 * millisecond resolution; a tier that keeps whole milliseconds truncates, which errs towards
 * treating the entry as invalidated (a miss), never towards serving it.
 */
const STEP = 1 / 1024

/**
 * When each tag was last invalidated. An entry is stale when one of its tags was invalidated at or
 * after the entry was written. Times are kept in process (updated by local calls and the bus) and,
 * when there is a shared tier, stored there so instances that missed a message still see them.
 */
export class TagClock {
  readonly #times = new Map<string, number>()
  readonly #max: number
  /** Entries with tags created at or before this time count as stale when a tag is unknown. */
  #floor = Number.NEGATIVE_INFINITY
  #lastMark = Number.NEGATIVE_INFINITY
  #maxCreated = Number.NEGATIVE_INFINITY
  readonly #shared: CacheStore<number> | undefined

  constructor(shared: CacheStore<number> | undefined, max = 100_000) {
    this.#shared = shared
    this.#max = max
  }

  /** True when one of `tags` was invalidated at or after `createdAt` (local knowledge only). */
  isStale(tags: readonly string[], createdAt: number): boolean {
    for (let i = 0; i < tags.length; i++) {
      const t = this.#times.get(tags[i] as string)
      if (t === undefined) {
        if (createdAt <= this.#floor) return true
      } else if (t >= createdAt) return true
    }
    return false
  }

  /** Makes sure every tag of `tags` is known locally, fetching unknown ones from the shared tier. */
  async ensure(tags: readonly string[]): Promise<void> {
    if (this.#shared === undefined) return
    const unknown = tags.filter((t) => !this.#times.has(t))
    if (unknown.length === 0) return
    const entries = await this.#shared.getMany(unknown)
    for (let i = 0; i < unknown.length; i++) {
      const tag = unknown[i] as string
      if (!this.#times.has(tag)) this.#remember(tag, entries[i]?.value ?? Number.NEGATIVE_INFINITY)
    }
  }

  /**
   * Records an invalidation of `tags` that happens now, locally; returns its time. Within this
   * instance, writes and invalidations are ordered as they were called, even inside one
   * millisecond: the time is at or after every creation time handed out so far (so it covers those
   * writes), and later writes get creation times after it (see {@link created}).
   */
  mark(tags: readonly string[], now: number): number {
    const at = Math.max(now, this.#maxCreated)
    if (at > this.#lastMark) this.#lastMark = at
    for (const tag of tags) this.#remember(tag, Math.max(at, this.#times.get(tag) ?? at))
    return at
  }

  /**
   * Records an invalidation of `tags` another instance made at `at` (its clock, as it stored it in
   * the shared tier). Entries written here after that time stay valid.
   */
  markRemote(tags: readonly string[], at: number): void {
    for (const tag of tags) this.#remember(tag, Math.max(at, this.#times.get(tag) ?? at))
  }

  /**
   * A creation time for an entry written now: after every invalidation this instance has seen,
   * and after the known invalidation time of each of its `tags` (call {@link ensure} first so
   * those include other instances' invalidations).
   */
  created(now: number, tags: readonly string[] = []): number {
    let at = now > this.#lastMark ? now : this.#lastMark + STEP
    for (const tag of tags) {
      const t = this.#times.get(tag)
      if (t !== undefined && t >= at) at = t + STEP
    }
    if (at > this.#maxCreated) this.#maxCreated = at
    return at
  }

  /** Records an invalidation happening now locally and in the shared tier (kept for `keepMs`). */
  async markShared(tags: readonly string[], now: number, keepMs: number): Promise<void> {
    const at = this.mark(tags, now)
    if (this.#shared === undefined) return
    await this.#shared.setMany(tags.map((key) => ({ key, value: at, ttl: keepMs })))
  }

  /** Forgets every time (after a bus reset): unknown tags are fetched again. */
  reset(now: number): void {
    this.#times.clear()
    if (this.#shared === undefined) this.#floor = now
  }

  #remember(tag: string, at: number): void {
    this.#times.delete(tag)
    this.#times.set(tag, at)
    if (this.#times.size > this.#max) {
      const [oldest, time] = this.#times.entries().next().value as [string, number]
      this.#times.delete(oldest)
      // an entry tagged with a forgotten tag may predate its invalidation: treat as stale
      if (time > this.#floor) this.#floor = time
    }
  }
}
