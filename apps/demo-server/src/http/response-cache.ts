import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteHandlerMethod,
  RouteOptions,
} from 'fastify'
import { createGrantCheck, type GrantCheck } from '../access.js'
import { type CachedResponse, RESPONSE_NAMESPACE } from '../domain/types.js'
import type { Stack } from '../stack.js'
import { ifNoneMatch } from './conditional.js'
import { CACHED_ROUTES, type CachedRoute, purgeRoutes } from './response-policy.js'
import { createResponsePurger, type PurgeHook, type ResponsePurger } from './response-purge.js'

/**
 * What the client is told: keep the response, but revalidate it (`If-None-Match`) before each
 * use. `private`: the routes answer a bearer token's holder, so a shared cache must not serve it
 * to others on its own; a CDN that authenticates at the edge caches by its own rules and purges
 * by `Surrogate-Key`.
 */
export const CACHE_CONTROL = 'private, no-cache'

/** Where a response came from (`x-cache`): the response cache, this request's load, or neither. */
export type CacheOutcome = 'hit' | 'miss' | 'bypass'

/** Options of {@link installResponseCache}. */
export interface ResponseCacheOptions {
  stack: Stack
  /** Where a CDN purge call goes. @default none: purges are logged (debug) */
  onPurge?: PurgeHook
}

/** One answer: what to send, and what the cache keeps for later reads. */
interface Produced {
  first: CachedResponse
  kept: CachedResponse
}

/** The route URL with its parameters filled in (as validated): `/actors/42/derived`. */
const pathOf = (url: string, params: Readonly<Record<string, string>>): string =>
  url.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => params[name] ?? '')

/** `body` as the route's response schema serializes it (JSON text). */
function serialized(reply: FastifyReply, body: unknown): string {
  const text = reply.serialize(body)
  return typeof text === 'string' ? text : Buffer.from(text as ArrayBuffer).toString('utf8')
}

/** The cache key of a response: the caller's roles, then the path (`player /actors/42`). */
const keyOf = (roles: readonly string[], path: string): string =>
  `${[...roles].sort().join(',')} ${path}`

/** Runs the route's own handler and keeps its answer serialized, with its ETag. */
async function produce(
  handler: RouteHandlerMethod,
  route: CachedRoute,
  call: { app: FastifyInstance; request: FastifyRequest; reply: FastifyReply },
): Promise<Produced> {
  const { app, request, reply } = call
  const body: unknown = await handler.call(app, request as never, reply as never)
  if (body === undefined || reply.sent) {
    throw new Error(`${request.routeOptions.url}: a cached route must return its body`)
  }
  const etag = route.etag(body)
  const first = { etag, body: serialized(reply, body) }
  if (route.replay === undefined) return { first, kept: first }
  return { first, kept: { etag, body: serialized(reply, route.replay(body)) } }
}

/** Sends `answer`, or 304 when the caller's `If-None-Match` has its ETag. */
function send(
  reply: FastifyReply,
  request: FastifyRequest,
  answer: { response: CachedResponse; tags: readonly string[]; outcome: CacheOutcome },
): FastifyReply {
  const { response } = answer
  void reply.headers({
    etag: response.etag,
    'cache-control': CACHE_CONTROL,
    'surrogate-key': answer.tags.join(' '),
    vary: 'Authorization',
    'x-cache': answer.outcome,
  })
  if (ifNoneMatch(request.headers['if-none-match'], response.etag)) return reply.code(304).send()
  return reply.type('application/json; charset=utf-8').send(response.body)
}

/**
 * The handler of a cached GET route around its own `handler`. The caller's read grants on the
 * route's sources are checked first (a hit calls no guarded namespace), and each answer from the
 * cache is charged to the caller's rate limit of `api_responses`. Copies are kept per route,
 * parameters and the caller's roles (what a response may show depends on the roles), tagged; a
 * load that a purge of one of its tags overtook is answered but not kept.
 */
function cachedHandler(
  handler: RouteHandlerMethod,
  route: CachedRoute,
  parts: { stack: Stack; check: GrantCheck },
): RouteHandlerMethod {
  const { stack, check } = parts
  const responses = stack.cache.namespace(RESPONSE_NAMESPACE)
  return async function cached(this: FastifyInstance, request, reply) {
    const { principal } = request
    for (const source of route.sources) check(principal, 'read', source)
    const params = request.params as Record<string, string>
    const tags = route.tags(params)
    const call = { app: this, request, reply }
    if (!stack.caching.enabled) {
      const { first } = await produce(handler, route, call)
      return send(reply, request, { response: first, tags, outcome: 'bypass' })
    }
    // a response the cache answers counts against the caller's rate limit like a cache call
    await stack.rateLimiter?.consume(principal, RESPONSE_NAMESPACE)
    const key = keyOf(principal.roles, pathOf(request.routeOptions.url ?? '', params))
    let own: Produced | undefined
    const kept = await responses.getOrSet(key, async (_key, context) => {
      context.setTags(tags)
      own = await produce(handler, route, call)
      return own.kept
    })
    const response = own?.first ?? kept
    return send(reply, request, { response, tags, outcome: own === undefined ? 'hit' : 'miss' })
  }
}

const methodsOf = (route: RouteOptions): readonly string[] =>
  typeof route.method === 'string' ? [route.method] : route.method

const onSendList = (hooks: RouteOptions['onSend']): unknown[] =>
  hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]

/** Wraps the handler of a cached GET (and its HEAD), adds the purge hook to a write route. */
function adopt(
  route: RouteOptions,
  parts: { stack: Stack; check: GrantCheck; purger: ResponsePurger; seen: Set<string> },
): void {
  const purges = purgeRoutes(parts.stack.settings.cache)
  for (const method of methodsOf(route)) {
    const cached = CACHED_ROUTES[route.url]
    if ((method === 'GET' || method === 'HEAD') && cached !== undefined) {
      route.handler = cachedHandler(route.handler, cached, parts)
      parts.seen.add(`GET ${route.url}`)
    }
    const tagsOf = purges[`${method} ${route.url}`]
    if (tagsOf !== undefined) {
      const hooks = [...onSendList(route.onSend), parts.purger.onSend(tagsOf)]
      route.onSend = hooks as RouteOptions['onSend']
      parts.seen.add(`${method} ${route.url}`)
    }
  }
}

/**
 * The API-level response cache, installed in the scope of the routes behind a token (before they
 * are registered). The GET routes of {@link CACHED_ROUTES} are answered from the cache's
 * `api_responses` namespace with `ETag`, `Cache-Control`, `Surrogate-Key` (their tags) and
 * `x-cache`, and 304 to a matching `If-None-Match`; with the caching switch off they bypass it.
 * The write routes of {@link purgeRoutes} purge their tags before they answer, and call the
 * purge hook. Starting fails if a route of either table does not exist.
 */
export function installResponseCache(app: FastifyInstance, options: ResponseCacheOptions): void {
  const { stack } = options
  const parts = {
    stack,
    check: createGrantCheck(stack.settings.demo.policy),
    purger: createResponsePurger(stack.cache, options.onPurge),
    seen: new Set<string>(),
  }
  app.addHook('onRoute', (route) => adopt(route, parts))
  app.addHook('onReady', async () => {
    const named = [
      ...Object.keys(CACHED_ROUTES).map((url) => `GET ${url}`),
      ...Object.keys(purgeRoutes(stack.settings.cache)),
    ]
    const missing = named.filter((route) => !parts.seen.has(route))
    if (missing.length > 0) {
      throw new Error(`the response cache names routes that do not exist: ${missing.join(', ')}`)
    }
  })
}
