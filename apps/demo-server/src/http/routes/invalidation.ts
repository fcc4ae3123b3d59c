import type { FastifyInstance } from 'fastify'
import { bearer } from '../auth.js'
import { responses } from '../schemas.js'

const tags = ['invalidation']
const strings = (description: string) =>
  ({ type: 'array', maxItems: 100, items: { type: 'string', minLength: 1 }, description }) as const
const done = responses({ 204: { type: 'null', description: 'invalidated' } })

interface Target {
  namespace?: string
  all?: boolean
  keys?: string[]
  patterns?: string[]
  tags?: string[]
}

/** Invalidation by key, pattern, tag, whole namespace, or a rule of the configuration file. */
export async function invalidationRoutes(app: FastifyInstance): Promise<void> {
  app.post<{ Body: Target }>(
    '/invalidations',
    {
      schema: {
        tags,
        summary:
          'Drops cached copies (every tier, every instance); the store of record keeps its data',
        security: bearer,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            namespace: { type: 'string', description: 'needed with keys, patterns and all' },
            all: { type: 'boolean', description: 'every entry of the namespace' },
            keys: strings('exact keys, e.g. actor:42'),
            patterns: strings('globs over keys of the namespace, e.g. actor:4*'),
            tags: strings('entries carrying any of these tags, in every namespace'),
          },
        },
        response: done,
      },
    },
    async (request, reply) => {
      await request.cache.invalidate(request.body)
      return reply.code(204).send()
    },
  )

  app.post<{ Params: { event: string }; Body: { params?: Record<string, string> } }>(
    '/invalidations/events/:event',
    {
      schema: {
        tags,
        summary: 'Runs an invalidation rule of the configuration file (invalidation.events)',
        security: bearer,
        params: {
          type: 'object',
          required: ['event'],
          properties: { event: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' } },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            params: {
              type: 'object',
              additionalProperties: { type: 'string' },
              description: 'placeholders of the rule, e.g. { "entityId": "actor:42" }',
            },
          },
        },
        response: done,
      },
    },
    async (request, reply) => {
      await request.cache.invalidateByEvent(request.params.event, request.body?.params ?? {})
      return reply.code(204).send()
    },
  )
}
