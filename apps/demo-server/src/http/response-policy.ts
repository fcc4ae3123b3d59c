import { type CacheConfig, MAX_TAG_LENGTH } from '@actor-cache/core'
import { expandEvent, type InvalidationTarget } from '@actor-cache/strategies'
import type { FastifyRequest } from 'fastify'
import {
  actorKey,
  type DemoNamespaces,
  type DerivedSources,
  GAME_CONFIG_KEY,
} from '../domain/types.js'

/** A namespace a response is read from. */
type Source = Exclude<keyof DemoNamespaces, 'api_responses'>

/** How the response cache treats one GET route. */
export interface CachedRoute {
  /** The namespaces its response is read from: the caller needs `read` on each, hit or miss. */
  readonly sources: readonly Source[]
  /** The response's tags (its `Surrogate-Key`): the entities it is built from, then namespaces. */
  tags(params: Readonly<Record<string, string>>): string[]
  /** The response's `ETag`, from the versions in its body. */
  etag(body: unknown): string
  /** What later reads of the cached copy get, when it differs from the first answer. */
  replay?(body: unknown): unknown
}

/** Gives the tags a write invalidates, from its request (body and parameters already validated). */
export type PurgeTags = (request: FastifyRequest) => readonly string[]

/** The tag of everything about one actor: its DELETE and rollbacks purge it. */
export const actorTag = (id: string): string => actorKey(id)

/** The tag of one cache entry that a response is built from: `primary_core:actor:42`. */
export const entryTag = (namespace: string, key: string): string => `${namespace}:${key}`

const actorId = (params: Readonly<Record<string, string>>): string => params.id as string
const versionOf = (body: unknown): number => (body as { version: number }).version

function actorTags(id: string, namespaces: readonly Source[]): string[] {
  const key = actorKey(id)
  return [actorTag(id), ...namespaces.map((ns) => entryTag(ns, key)), ...namespaces]
}

/**
 * The cached GET routes, by route URL. Versions are the strong `ETag`s the write routes take back
 * in `If-Match`; derived stats have a weak one, from the versions of their three sources, since
 * the read that computes them says `computed: true` and the copies served later say `false`.
 */
export const CACHED_ROUTES: Readonly<Record<string, CachedRoute>> = {
  '/actors/:id': {
    sources: ['primary_core'],
    tags: (params) => actorTags(actorId(params), ['primary_core']),
    etag: (body) => `"${versionOf(body)}"`,
  },
  '/actors/:id/equipment': {
    sources: ['primary_core', 'flexible_stats'],
    tags: (params) => actorTags(actorId(params), ['flexible_stats']),
    etag: (body) => `"${versionOf(body)}"`,
  },
  '/actors/:id/derived': {
    sources: ['primary_core', 'flexible_stats', 'config', 'derived_stats'],
    tags: (params) => [
      ...actorTags(actorId(params), ['primary_core', 'flexible_stats', 'derived_stats']),
      entryTag('config', GAME_CONFIG_KEY),
      'config',
    ],
    etag: (body) => {
      const s = (body as { derivedStats: { sources: DerivedSources } }).derivedStats.sources
      return `W/"${s.primaryCore}.${s.flexibleStats}.${s.config}"`
    },
    replay: (body) => ({ ...(body as object), computed: false }),
  },
  '/config': {
    sources: ['config'],
    tags: () => [entryTag('config', GAME_CONFIG_KEY), 'config'],
    etag: (body) => `"${versionOf(body)}"`,
  },
}

/** A tag a CDN takes as one surrogate key: no whitespace, not too long. */
const SURROGATE_KEY = new RegExp(`^\\S{1,${MAX_TAG_LENGTH}}$`)

/**
 * The response tags an invalidation reaches: its tags; `namespace:key` per key (the namespace's
 * tag for a key no tag can carry); the namespace's tag for patterns and `all`.
 */
export function targetTags(target: InvalidationTarget): string[] {
  const tags = [...(target.tags ?? [])]
  const ns = target.namespace
  if (ns === undefined) return tags
  if (target.all === true || (target.patterns?.length ?? 0) > 0) tags.push(ns)
  for (const key of target.keys ?? []) {
    const tag = entryTag(ns, key)
    tags.push(SURROGATE_KEY.test(tag) ? tag : ns)
  }
  return tags
}

type Params = { Params: Record<string, string> }
const params = (request: FastifyRequest): Record<string, string> =>
  (request as FastifyRequest<Params>).params
const actorEntry =
  (namespace: Source): PurgeTags =>
  (request) => [entryTag(namespace, actorKey(actorId(params(request))))]
const wholeActor: PurgeTags = (request) => [actorTag(actorId(params(request)))]
const gameConfig: PurgeTags = () => [entryTag('config', GAME_CONFIG_KEY)]

/**
 * The write routes, by `METHOD url`, and the tags each purges once it has answered (not after a
 * 4xx: nothing was written). A DELETE or rollback purges everything about the actor (a rollback
 * may undo its creation); invalidations purge what they name, events what their rules name.
 */
export function purgeRoutes(config: CacheConfig): Readonly<Record<string, PurgeTags>> {
  return {
    'PUT /actors/:id': actorEntry('primary_core'),
    'PATCH /actors/:id': actorEntry('primary_core'),
    'DELETE /actors/:id': wholeActor,
    'PUT /actors/:id/equipment': actorEntry('flexible_stats'),
    'PUT /config': gameConfig,
    'PATCH /config': gameConfig,
    'POST /actors/:id/rollback': wholeActor,
    'POST /invalidations': (request) => targetTags(request.body as InvalidationTarget),
    'POST /invalidations/events/:event': (request) => {
      const body = request.body as { params?: Record<string, string> } | undefined
      const event = params(request).event as string
      return expandEvent(config.invalidation, event, body?.params ?? {}).flatMap(targetTags)
    },
  }
}
