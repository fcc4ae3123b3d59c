import type { FastifyInstance } from 'fastify'
import { getFlexible, putFlexible } from '../../domain/equipment.js'
import type { FlexibleStats } from '../../domain/types.js'
import { bearer } from '../auth.js'
import {
  flexibleSchema,
  type IdParams,
  idParams,
  responses,
  versioned,
  versionSchema,
} from '../schemas.js'
import { expectedVersion, tagVersion } from '../versions.js'

const tags = ['equipment']
const reply200 = responses({ 200: versioned('flexibleStats', flexibleSchema) })

/** An actor's equipment and buffs (flexible stats, write-around). */
export async function equipmentRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Params: IdParams }>(
    '/actors/:id/equipment',
    {
      schema: {
        tags,
        summary: "An actor's equipment and buffs",
        security: bearer,
        params: idParams,
        response: reply200,
      },
    },
    async (request, reply) => {
      const { version, value } = await getFlexible(request.cache, request.params.id)
      tagVersion(reply, version)
      return { id: request.params.id, version, flexibleStats: value }
    },
  )

  app.put<{ Params: IdParams; Body: { flexibleStats: FlexibleStats; expectedVersion?: number } }>(
    '/actors/:id/equipment',
    {
      schema: {
        tags,
        summary: "Replaces an actor's equipment and buffs; its derived stats are recomputed",
        security: bearer,
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['flexibleStats'],
          properties: { flexibleStats: flexibleSchema, expectedVersion: versionSchema },
        },
        response: reply200,
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const expected = expectedVersion(request, request.body.expectedVersion)
      const { version } = await putFlexible(request.cache, id, request.body.flexibleStats, expected)
      tagVersion(reply, version)
      return { id, version, flexibleStats: request.body.flexibleStats }
    },
  )
}
