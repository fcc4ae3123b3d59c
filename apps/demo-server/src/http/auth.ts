import type { Principal } from '@actor-cache/security'
import { trackAs } from '@actor-cache/state-tracker'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createGrantCheck } from '../access.js'
import { type TrackedWriter, trackedWriter } from '../domain/tracked-writer.js'
import { type DemoNamespaces, SYSTEM_ID, type TrackedNamespace } from '../domain/types.js'
import type { TokenOwner } from '../settings.js'
import type { CacheView, Stack } from '../stack.js'
import { HttpError } from './errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling (from the bearer token). */
    principal: Principal
    /** The cache as this caller may use it: every call checked against its role. */
    cache: CacheView
    /** This caller's writer of a tracked namespace (deletes with an expected version). */
    tracked<N extends TrackedNamespace>(namespace: N): TrackedWriter<DemoNamespaces[N]>
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/

/** The principal of a request's bearer token. */
export function principalOf(
  request: FastifyRequest,
  tokens: ReadonlyMap<string, TokenOwner>,
): Principal {
  const header = request.headers.authorization
  if (header === undefined) {
    throw new HttpError(401, 'E_UNAUTHENTICATED', 'missing Authorization: Bearer <token> header')
  }
  const token = BEARER.exec(header)?.[1]
  const owner = token === undefined ? undefined : tokens.get(token)
  if (owner === undefined) throw new HttpError(401, 'E_UNAUTHENTICATED', 'unknown bearer token')
  return { id: owner.id, roles: [owner.role] }
}

/**
 * Requires a known bearer token on every route of `app` (an encapsulated scope), gives each
 * request the guarded view of the cache for its principal, and makes the principal the author of
 * every tracked write the request makes (user id: the principal's id; system id: the server's).
 */
export function requireToken(app: FastifyInstance, stack: Stack): void {
  app.decorateRequest('principal', null as unknown as Principal)
  app.decorateRequest('cache', null as unknown as CacheView)
  app.decorateRequest('tracked', null as unknown as FastifyRequest['tracked'])
  const tokens = stack.settings.demo.tokens
  const check = createGrantCheck(stack.settings.demo.policy)
  app.addHook('onRequest', async (request) => {
    const principal = principalOf(request, tokens)
    request.principal = principal
    request.cache = stack.guarded.as(principal)
    request.tracked = (namespace) =>
      trackedWriter(namespace, { view: request.cache, cache: stack.cache, principal, check })
  })
  // the author holds for the rest of the request: the handler and every promise it starts
  app.addHook('preHandler', (request, _reply, done) => {
    trackAs({ userId: request.principal.id, systemId: SYSTEM_ID }, done)
  })
}

/** The `security` entry of routes behind {@link requireToken}, for the OpenAPI document. */
export const bearer = [{ bearer: [] }]
