import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createGrantCheck } from '../access.js'
import { bearer } from '../http/auth.js'
import { responses } from '../http/schemas.js'
import { SEED_MARK } from '../seed.js'
import type { Stack } from '../stack.js'
import { createLoadCounters } from './load-counters.js'

const tags = ['load generator']
const anyObject = { type: 'object', additionalProperties: true } as const
const cachingReply = responses({
  200: {
    type: 'object',
    required: ['enabled'],
    properties: { enabled: { type: 'boolean', description: 'false: every read goes to the DB' } },
  },
})

/**
 * The load generator's admin routes (`pnpm demo:load`): the caching switch, and counters of
 * database operations, cache hits and memory between a reset and a read. Admin only: the caller
 * needs `admin` on every namespace of the cache.
 */
export async function loadRoutes(app: FastifyInstance, options: { stack: Stack }): Promise<void> {
  const { stack } = options
  const check = createGrantCheck(stack.settings.demo.policy)
  const namespaces = Object.keys(stack.settings.cache.strategies)
  const requireAdmin = async (request: FastifyRequest): Promise<void> => {
    for (const ns of namespaces) check(request.principal, 'admin', ns)
  }
  const counters = createLoadCounters()
  // read once: the mark changes only while the server starts, and a read while counting would count
  let actors: Promise<number> | undefined
  const seededActors = (): Promise<number> => {
    actors ??= stack.record.store
      .namespace<number>(SEED_MARK.namespace)
      .get(SEED_MARK.key)
      .then((e) => e?.value ?? 0)
    actors.catch(() => {
      actors = undefined
    })
    return actors
  }
  app.addHook('onClose', async () => counters.stop())

  const switchState = () => ({ enabled: stack.caching.enabled })
  app.get(
    '/admin/caching',
    {
      preHandler: requireAdmin,
      schema: {
        tags,
        summary: 'Whether reads use the caches',
        security: bearer,
        response: cachingReply,
      },
    },
    async () => switchState(),
  )
  app.put<{ Body: { enabled: boolean } }>(
    '/admin/caching',
    {
      preHandler: requireAdmin,
      schema: {
        tags,
        summary:
          'Turns caching on or off: off, every read bypasses L1 and L2 for the store of record',
        security: bearer,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled'],
          properties: { enabled: { type: 'boolean' } },
        },
        response: cachingReply,
      },
    },
    async (request) => {
      stack.caching.setEnabled(request.body.enabled)
      return switchState()
    },
  )

  app.post<{ Body: { dropCaches?: boolean } | undefined }>(
    '/admin/load-stats/reset',
    {
      preHandler: requireAdmin,
      schema: {
        tags,
        summary:
          'Zeroes the load counters and starts counting; dropCaches: every namespace invalidated first (a cold start)',
        security: bearer,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { dropCaches: { type: 'boolean' } },
        },
        response: responses({ 200: anyObject }),
      },
    },
    async (request) => {
      if (request.body?.dropCaches === true) {
        for (const namespace of namespaces) {
          await request.cache.invalidate({ namespace: namespace as never, all: true })
        }
      }
      counters.start()
      return { startedAt: counters.snapshot().startedAt, ...switchState() }
    },
  )

  app.get(
    '/admin/load-stats',
    {
      preHandler: requireAdmin,
      schema: {
        tags,
        summary:
          'Since the last reset: DB reads and writes, L1 and L2 hits and misses, memory; the actors seeded',
        security: bearer,
        response: responses({ 200: anyObject }),
      },
    },
    async () => {
      const l1 = stack.l1.stats()
      return {
        ...counters.snapshot(),
        caching: stack.caching.enabled,
        hasL2: stack.shared.l2 !== undefined,
        actors: await seededActors(),
        l1Held: { entries: l1.entries, bytes: l1.bytes },
      }
    },
  )
}
