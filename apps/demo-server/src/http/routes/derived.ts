import type { FastifyInstance } from 'fastify'
import { getDerived } from '../../domain/derived.js'
import type { DemoCache } from '../../stack.js'
import { bearer } from '../auth.js'
import { derivedSchema, type IdParams, idParams, responses } from '../schemas.js'

/** An actor's derived stats, computed from its primary core, flexible stats and the game config. */
export async function derivedRoutes(
  app: FastifyInstance,
  options: { cache: DemoCache },
): Promise<void> {
  app.get<{ Params: IdParams }>(
    '/actors/:id/derived',
    {
      schema: {
        tags: ['derived stats'],
        summary: "An actor's derived stats (cached while their sources' versions hold)",
        security: bearer,
        params: idParams,
        response: responses({
          200: {
            type: 'object',
            required: ['id', 'derivedStats', 'computed'],
            properties: {
              id: { type: 'string' },
              derivedStats: derivedSchema,
              computed: { type: 'boolean', description: 'true when this read computed them' },
            },
          },
        }),
      },
    },
    async (request) => {
      const { stats, computed } = await getDerived(request.cache, options.cache, request.params.id)
      return { id: request.params.id, derivedStats: stats, computed }
    },
  )
}
