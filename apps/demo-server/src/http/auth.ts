import type { Principal } from '@actor-cache/security'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TokenOwner } from '../settings.js'
import type { CacheView, Stack } from '../stack.js'
import { HttpError } from './errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling (from the bearer token). */
    principal: Principal
    /** The cache as this caller may use it: every call checked against its role. */
    cache: CacheView
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
 * Requires a known bearer token on every route of `app` (an encapsulated scope), and gives each
 * request the guarded view of the cache for its principal.
 */
export function requireToken(app: FastifyInstance, stack: Stack): void {
  app.decorateRequest('principal', null as unknown as Principal)
  app.decorateRequest('cache', null as unknown as CacheView)
  const tokens = stack.settings.demo.tokens
  app.addHook('onRequest', async (request) => {
    request.principal = principalOf(request, tokens)
    request.cache = stack.guarded.as(request.principal)
  })
}

/** The `security` entry of routes behind {@link requireToken}, for the OpenAPI document. */
export const bearer = [{ bearer: [] }]
