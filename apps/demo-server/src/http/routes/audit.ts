import { Readable } from 'node:stream'
import type { ChainCheckpoint } from '@actor-cache/state-tracker'
import type { FastifyInstance } from 'fastify'
import { requireRole } from '../../access.js'
import { type AuditFilters, maskRecord, toChangeQuery } from '../../domain/audit.js'
import type { Stack } from '../../stack.js'
import {
  auditPageSchema,
  auditQuerySchema,
  checkpointSchema,
  checkpointVerificationSchema,
  exportQuerySchema,
} from '../audit-schemas.js'
import { bearer } from '../auth.js'
import { responses } from '../schemas.js'

const tags = ['audit']

/** Each line of an export, newline-terminated. */
async function* ndjson(lines: AsyncIterable<string>): AsyncGenerator<string> {
  for await (const line of lines) yield `${line}\n`
}

/**
 * The audit trail of every tracked write: filtered pages, a JSON-lines export, and checkpoints
 * of the whole log (taken, and verified later against the log).
 */
export async function auditRoutes(app: FastifyInstance, options: { stack: Stack }): Promise<void> {
  const { tracker, settings } = options.stack
  const audit = settings.demo.audit

  app.get<{ Querystring: AuditFilters }>(
    '/audit',
    {
      schema: {
        tags,
        summary: 'Change records matching the filters, oldest first, one page at a time',
        security: bearer,
        querystring: auditQuerySchema,
        response: responses({ 200: auditPageSchema }),
      },
    },
    async (request) => {
      requireRole(request.principal, audit.readRoles, 'read the audit trail')
      const page = await tracker.query(toChangeQuery(request.query))
      return {
        records: page.records.map((r) => maskRecord(r, audit)),
        ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
      }
    },
  )

  app.get<{ Querystring: Omit<AuditFilters, 'limit' | 'cursor'> }>(
    '/audit/export',
    {
      schema: {
        tags,
        summary: 'Every change record matching the filters as JSON lines (application/x-ndjson)',
        security: bearer,
        querystring: exportQuerySchema,
        produces: ['application/x-ndjson'],
        response: responses({ 200: { type: 'string', description: 'one record per line' } }),
      },
    },
    async (request, reply) => {
      requireRole(request.principal, audit.readRoles, 'export the audit trail')
      const lines = tracker.exportJsonLines({ ...toChangeQuery(request.query), limit: 500 })
      return reply
        .type('application/x-ndjson')
        .header('content-disposition', 'attachment; filename="audit.ndjson"')
        .send(Readable.from(ndjson(lines)))
    },
  )

  app.post(
    '/audit/checkpoints',
    {
      schema: {
        tags,
        summary: "Takes a checkpoint: a digest of every entity's newest change (keep it elsewhere)",
        security: bearer,
        response: responses({ 201: checkpointSchema }),
      },
    },
    async (request, reply) => {
      requireRole(request.principal, audit.checkpointRoles, 'take checkpoints')
      return reply.code(201).send(await tracker.checkpoint())
    },
  )

  app.post<{ Body: ChainCheckpoint }>(
    '/audit/checkpoints/verify',
    {
      schema: {
        tags,
        summary: 'Verifies the log against a checkpoint: nothing before it deleted or rewritten',
        security: bearer,
        body: checkpointSchema,
        response: responses({ 200: checkpointVerificationSchema }),
      },
    },
    async (request) => {
      requireRole(request.principal, audit.checkpointRoles, 'verify checkpoints')
      return tracker.verifyCheckpoint(request.body)
    },
  )
}
