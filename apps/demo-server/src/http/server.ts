import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { NotFoundError } from '../domain/errors.js'
import { loadRoutes } from '../load/admin-routes.js'
import type { Stack } from '../stack.js'
import { requireToken } from './auth.js'
import { errorHandler, toResponse } from './errors.js'
import { installResponseCache } from './response-cache.js'
import type { PurgeHook } from './response-purge.js'
import { actorRoutes } from './routes/actors.js'
import { auditRoutes } from './routes/audit.js'
import { configRoutes } from './routes/config.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { derivedRoutes } from './routes/derived.js'
import { equipmentRoutes } from './routes/equipment.js'
import { historyRoutes } from './routes/history.js'
import { inspectRoutes } from './routes/inspect.js'
import { invalidationRoutes } from './routes/invalidation.js'
import { publicOpsRoutes, statsRoutes } from './routes/ops.js'

/** Options of {@link buildHttp}. */
export interface HttpOptions {
  /** Fastify's pino logger options, or false for none. */
  logger: FastifyServerOptions['logger']
  /** Where a CDN purge call goes (see `response-purge.ts`). @default none: purges are logged */
  onPurge?: PurgeHook | undefined
}

/**
 * The Fastify application over a stack: JSON schemas on every route (extra or mistyped fields are
 * refused, never dropped or coerced), typed errors mapped to statuses, an OpenAPI document at
 * `/openapi.json`, and the routes behind a bearer token.
 */
export async function buildHttp(stack: Stack, options: HttpOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    // a closing server answers what it started, then closes idle keep-alive sockets
    forceCloseConnections: 'idle',
  })
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((request, reply) => {
    const { body } = toResponse(new NotFoundError(`route ${request.method} ${request.url}`))
    return reply.code(404).send(body)
  })
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Actor Cache demo server',
        version: '0.0.0',
        description: 'A small game backend on Actor Cache. Tokens: see the README.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(publicOpsRoutes, { stack })
  // the page asks for a token itself; its event stream takes one in ?token=
  await app.register(dashboardRoutes, { stack })
  await app.register(async (api) => {
    requireToken(api, stack)
    // before the routes: it wraps the cached GETs and hooks the writes as they are registered
    installResponseCache(api, {
      stack,
      ...(options.onPurge === undefined ? {} : { onPurge: options.onPurge }),
    })
    await api.register(actorRoutes, { encryption: stack.settings.demo.encryption })
    await api.register(equipmentRoutes)
    await api.register(derivedRoutes, { cache: stack.cache })
    await api.register(configRoutes, { cache: stack.cache })
    await api.register(invalidationRoutes)
    await api.register(statsRoutes, { stack })
    await api.register(historyRoutes, { stack })
    await api.register(auditRoutes, { stack })
    await api.register(inspectRoutes, { stack })
    await api.register(loadRoutes, { stack })
  })
  return app
}
