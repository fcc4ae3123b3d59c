import type { FastifyInstance, FastifyRequest } from 'fastify'
import { deleteActor, getPrimary, patchPrimary, putPrimary } from '../../domain/actors.js'
import type { PrimaryCore } from '../../domain/types.js'
import { revealTo } from '../../encryption.js'
import type { EncryptionSettings } from '../../settings.js'
import { bearer } from '../auth.js'
import {
  type IdParams,
  idParams,
  primaryCoreSchema,
  primaryPatchSchema,
  responses,
  versioned,
  versionSchema,
} from '../schemas.js'
import { expectedVersion, tagVersion } from '../versions.js'

const tags = ['actors']
const reply200 = responses({ 200: versioned('primaryCore', primaryCoreSchema) })
const ifMatch = {
  type: 'object',
  properties: { 'if-match': { type: 'string', description: 'expected version, e.g. "3"' } },
} as const

/**
 * GET, PUT, PATCH and DELETE of an actor's primary core, with expected versions. Encrypted fields
 * (the email) are answered in clear only to the roles `encryption` reveals them to.
 */
export async function actorRoutes(
  app: FastifyInstance,
  options: { encryption: EncryptionSettings | undefined },
): Promise<void> {
  const shown = (request: FastifyRequest, value: PrimaryCore): PrimaryCore =>
    revealTo(request.principal, options.encryption, 'primary_core', value)
  app.get<{ Params: IdParams }>(
    '/actors/:id',
    {
      schema: {
        tags,
        summary: "An actor's primary core",
        security: bearer,
        params: idParams,
        response: reply200,
      },
    },
    async (request, reply) => {
      const { version, value } = await getPrimary(request.cache, request.params.id)
      tagVersion(reply, version)
      return { id: request.params.id, version, primaryCore: shown(request, value) }
    },
  )

  app.put<{ Params: IdParams; Body: { primaryCore: PrimaryCore; expectedVersion?: number } }>(
    '/actors/:id',
    {
      schema: {
        tags,
        summary:
          'Creates or replaces a primary core (write-through); 0 as expected version creates only',
        security: bearer,
        params: idParams,
        headers: ifMatch,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['primaryCore'],
          properties: { primaryCore: primaryCoreSchema, expectedVersion: versionSchema },
        },
        response: reply200,
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const expected = expectedVersion(request, request.body.expectedVersion)
      const { version } = await putPrimary(request.cache, id, request.body.primaryCore, expected)
      tagVersion(reply, version)
      return { id, version, primaryCore: shown(request, request.body.primaryCore) }
    },
  )

  app.patch<{
    Params: IdParams
    Body: { primaryCore: Partial<PrimaryCore>; expectedVersion?: number }
  }>(
    '/actors/:id',
    {
      schema: {
        tags,
        summary: 'Changes some fields of a primary core (compare-and-set against the version read)',
        security: bearer,
        params: idParams,
        headers: ifMatch,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['primaryCore'],
          properties: { primaryCore: primaryPatchSchema, expectedVersion: versionSchema },
        },
        response: reply200,
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const expected = expectedVersion(request, request.body.expectedVersion)
      const { version, value } = await patchPrimary(
        request.cache,
        id,
        request.body.primaryCore,
        expected,
      )
      tagVersion(reply, version)
      return { id, version, primaryCore: shown(request, value) }
    },
  )

  app.delete<{ Params: IdParams }>(
    '/actors/:id',
    {
      schema: {
        tags,
        summary:
          'Deletes an actor (primary core, flexible and derived stats); with If-Match, only at that version',
        security: bearer,
        params: idParams,
        headers: ifMatch,
        response: responses({ 204: { type: 'null', description: 'deleted' } }),
      },
    },
    async (request, reply) => {
      const expected = expectedVersion(request, undefined)
      await deleteActor(request.cache, request.tracked('primary_core'), request.params.id, expected)
      return reply.code(204).send()
    },
  )
}
