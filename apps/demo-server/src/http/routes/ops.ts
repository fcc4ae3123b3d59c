import type { FastifyInstance } from 'fastify'
import type { Stack } from '../../stack.js'
import { bearer } from '../auth.js'
import { responses } from '../schemas.js'

const anyObject = { type: 'object', additionalProperties: true } as const
const healthReply = {
  type: 'object',
  required: ['status', 'live', 'ready', 'readyForWrites'],
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded', 'down'] },
    live: { type: 'boolean' },
    ready: { type: 'boolean' },
    readyForWrites: { type: 'boolean' },
    components: anyObject,
  },
} as const

/** Prometheus metrics and health probes: no token needed. */
export async function publicOpsRoutes(
  app: FastifyInstance,
  options: { stack: Stack },
): Promise<void> {
  const { metrics, health } = options.stack
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        response: { 200: { type: 'string' } },
      },
    },
    async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()),
  )
  for (const probe of ['live', 'ready'] as const) {
    app.get(
      `/health/${probe}`,
      {
        schema: {
          tags: ['operations'],
          summary:
            probe === 'live'
              ? 'Liveness: 200 while L1 answers (restart the process otherwise)'
              : 'Readiness: 200 while reads can be served; 503 otherwise',
          response: { 200: healthReply, 503: healthReply },
        },
      },
      async (_request, reply) => {
        const report = await health.check()
        return reply.code(report[probe] ? 200 : 503).send(report)
      },
    )
  }
}

/** Cache statistics per tier and namespace (admin). */
export async function statsRoutes(app: FastifyInstance, options: { stack: Stack }): Promise<void> {
  const { stack } = options
  app.get(
    '/stats',
    {
      schema: {
        tags: ['operations'],
        summary:
          'Cache statistics: per namespace (L1, lower tiers, record, loads), L1, write-behind',
        security: bearer,
        response: responses({
          200: {
            type: 'object',
            properties: {
              tiers: anyObject,
              namespaces: anyObject,
              writeBehind: anyObject,
              l1: anyObject,
              queue: anyObject,
            },
          },
        }),
      },
    },
    async (request) => {
      const cache = request.cache.stats()
      return {
        tiers: stack.tiers,
        namespaces: cache.namespaces,
        writeBehind: cache.writeBehind ?? {},
        l1: stack.l1.stats(),
        queue: await stack.shared.queue.stats(),
      }
    },
  )
}
