import type { ChangeRecord } from '@actor-cache/core'
import type { PointInTime, RollbackTarget } from '@actor-cache/state-tracker'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { requireRole } from '../../access.js'
import { maskRecord, maskState, parseTime, storedState } from '../../domain/audit.js'
import { actorKey, SYSTEM_ID, TRACKED, type TrackedNamespace } from '../../domain/types.js'
import type { Stack } from '../../stack.js'
import {
  chainVerificationSchema,
  changeRecordSchema,
  entityTypeSchema,
  rollbackBodySchema,
  stateSchema,
} from '../audit-schemas.js'
import { bearer } from '../auth.js'
import { HttpError } from '../errors.js'
import { type IdParams, idParams, responses } from '../schemas.js'

const tags = ['audit']
const entityQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { entityType: entityTypeSchema },
} as const
const stateQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    entityType: entityTypeSchema,
    version: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'the state at this version' },
    time: {
      type: 'string',
      maxLength: 40,
      description: 'the state at this time (epoch ms or ISO)',
    },
  },
} as const

interface EntityQuery {
  entityType?: TrackedNamespace
}
interface RollbackBody {
  toVersion?: number
  toTime?: number | string
  undo?: string
  force?: boolean
  entityType?: TrackedNamespace
}

function pointOf(query: { version?: string; time?: string }): PointInTime {
  if ((query.version === undefined) === (query.time === undefined)) {
    throw new HttpError(400, 'E_BAD_REQUEST', 'give exactly one of ?version= and ?time=')
  }
  return query.version !== undefined
    ? { version: Number(query.version) }
    : { time: parseTime(query.time as string, 'time') }
}

function targetOf(body: RollbackBody): RollbackTarget {
  if (body.toVersion !== undefined) return { toVersion: body.toVersion }
  if (body.toTime !== undefined) return { toTime: parseTime(body.toTime, 'toTime') }
  return { undo: body.undo as string }
}

/**
 * An actor's audit trail: its change records, chain verification against the stored state, its
 * state at a version or time, and rollback (a new change, never an edit of history).
 */
export async function historyRoutes(
  app: FastifyInstance,
  options: { stack: Stack },
): Promise<void> {
  const { tracker, settings, record } = options.stack
  const audit = settings.demo.audit
  const mayRead = (request: FastifyRequest): void =>
    requireRole(request.principal, audit.readRoles, 'read the audit trail')

  app.get<{ Params: IdParams; Querystring: EntityQuery }>(
    '/actors/:id/history',
    {
      schema: {
        tags,
        summary: "An actor's change records, oldest first (both tracked namespaces by default)",
        security: bearer,
        params: idParams,
        querystring: entityQuery,
        response: responses({
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              records: { type: 'array', items: changeRecordSchema },
            },
          },
        }),
      },
    },
    async (request) => {
      mayRead(request)
      const key = actorKey(request.params.id)
      const types = request.query.entityType === undefined ? TRACKED : [request.query.entityType]
      const lists = await Promise.all(types.map((t) => tracker.history(t, key)))
      const byTime = (a: ChangeRecord, b: ChangeRecord) => a.timestamp - b.timestamp
      const records = lists.flat().sort(byTime)
      return { id: request.params.id, records: records.map((r) => maskRecord(r, audit)) }
    },
  )

  app.get<{ Params: IdParams; Querystring: EntityQuery }>(
    '/actors/:id/verify',
    {
      schema: {
        tags,
        summary:
          "Verifies an actor's hash chain, and that the stored state is the one it ends with",
        security: bearer,
        params: idParams,
        querystring: entityQuery,
        response: responses({ 200: chainVerificationSchema }),
      },
    },
    async (request) => {
      mayRead(request)
      const type = request.query.entityType ?? 'primary_core'
      const key = actorKey(request.params.id)
      const stored = await storedState(record.store, type, key)
      return tracker.verify(type, key, { stored })
    },
  )

  app.get<{ Params: IdParams; Querystring: EntityQuery & { version?: string; time?: string } }>(
    '/actors/:id/state',
    {
      schema: {
        tags,
        summary: "An actor's state at a version or a time (a replay of its log)",
        security: bearer,
        params: idParams,
        querystring: stateQuery,
        response: responses({
          200: {
            type: 'object',
            properties: {
              ...stateSchema.properties,
              id: { type: 'string' },
              entityType: { type: 'string' },
              version: { type: 'integer' },
              timestamp: { type: 'integer' },
            },
          },
        }),
      },
    },
    async (request) => {
      mayRead(request)
      const type = request.query.entityType ?? 'primary_core'
      const at = await tracker.getStateAt(type, actorKey(request.params.id), pointOf(request.query))
      const state = at.exists ? { ...at, value: maskState(type, at.value, audit) } : at
      return { id: request.params.id, entityType: type, ...state }
    },
  )

  app.post<{ Params: IdParams; Body: RollbackBody }>(
    '/actors/:id/rollback',
    {
      schema: {
        tags,
        summary:
          'Rolls an actor back to a version or time, or undoes one change: a new change, logged',
        security: bearer,
        params: idParams,
        body: rollbackBodySchema,
        response: responses({
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              entityType: { type: 'string' },
              changed: { type: 'boolean', description: 'false: it was in that state already' },
              version: { type: 'integer' },
              state: stateSchema,
            },
          },
        }),
      },
    },
    async (request) => {
      requireRole(request.principal, audit.rollbackRoles, 'roll back')
      const type = request.body.entityType ?? 'primary_core'
      const result = await tracker.rollback(
        type,
        actorKey(request.params.id),
        targetOf(request.body),
        {
          writer: request.tracked(type),
          userId: request.principal.id,
          systemId: SYSTEM_ID,
          force: request.body.force === true,
        },
      )
      const state = result.state.exists
        ? { exists: true, value: maskState(type, result.state.value, audit) }
        : result.state
      return { id: request.params.id, entityType: type, ...result, state }
    },
  )
}
