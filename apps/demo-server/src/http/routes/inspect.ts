import type { FastifyInstance } from 'fastify'
import { requireRole } from '../../access.js'
import { INSPECTED, inspectActor } from '../../dashboard/inspect.js'
import type { Stack } from '../../stack.js'
import { bearer } from '../auth.js'
import { type IdParams, idParams, responses } from '../schemas.js'

const anyValue = {} as const
const copySchema = {
  type: 'object',
  required: ['state'],
  properties: {
    state: { type: 'string', enum: ['absent', 'present', 'error'] },
    value: anyValue,
    version: { type: 'integer' },
    createdAt: { type: 'integer' },
    expiresAt: { type: ['integer', 'null'], description: 'epoch ms; null: never' },
    ttlMs: { type: ['number', 'null'], description: "the tier's getTTL; null: never expires" },
    code: { type: 'string' },
    message: { type: 'string' },
  },
} as const
const namespaceSchema = {
  type: 'object',
  required: ['cache', 'tiers'],
  properties: {
    cache: copySchema,
    tiers: { type: 'object', additionalProperties: copySchema },
  },
} as const

/**
 * `GET /actors/:id/inspect`: an actor's value, version and TTL in each tier and namespace, for
 * the roles that may read the audit trail (it shows stored copies, not only what reads answer).
 */
export async function inspectRoutes(
  app: FastifyInstance,
  options: { stack: Stack },
): Promise<void> {
  const { stack } = options
  const audit = stack.settings.demo.audit
  app.get<{ Params: IdParams }>(
    '/actors/:id/inspect',
    {
      schema: {
        tags: ['operations'],
        summary: 'An actor in each tier: value, version and TTL per namespace (L1, L2, record)',
        security: bearer,
        params: idParams,
        response: responses({
          200: {
            type: 'object',
            required: ['id', 'key', 'tiers', 'namespaces'],
            properties: {
              id: { type: 'string' },
              key: { type: 'string' },
              tiers: { type: 'object', additionalProperties: { type: 'string' } },
              namespaces: {
                type: 'object',
                properties: Object.fromEntries(INSPECTED.map((n) => [n, namespaceSchema])),
              },
            },
          },
        }),
      },
    },
    async (request) => {
      requireRole(request.principal, audit.readRoles, 'inspect actors')
      return inspectActor(stack, request.cache, request.params.id, audit)
    },
  )
}
