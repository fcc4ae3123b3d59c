import type { FastifyInstance } from 'fastify'
import { getGameConfig, updateGameConfig } from '../../domain/config-manager.js'
import { GAME_CONFIG_KEY, type GameConfig } from '../../domain/types.js'
import type { DemoCache } from '../../stack.js'
import { bearer } from '../auth.js'
import {
  gameConfigPatchSchema,
  gameConfigSchema,
  responses,
  versioned,
  versionSchema,
} from '../schemas.js'
import { expectedVersion, tagVersion } from '../versions.js'

const tags = ['config']
const reply200 = responses({ 200: versioned('config', gameConfigSchema) })
type Update = { config: Partial<GameConfig>; expectedVersion?: number }

/** The game settings (ConfigManager): a change drops every actor's derived stats. */
export async function configRoutes(
  app: FastifyInstance,
  options: { cache: DemoCache },
): Promise<void> {
  app.get(
    '/config',
    { schema: { tags, summary: 'The game settings', security: bearer, response: reply200 } },
    async (request, reply) => {
      const { version, value } = await getGameConfig(request.cache)
      tagVersion(reply, version)
      return { id: GAME_CONFIG_KEY, version, config: value }
    },
  )

  const update = (full: boolean) => ({
    schema: {
      tags,
      summary: full
        ? "Replaces the game settings; every actor's derived stats are invalidated"
        : "Changes some game settings; every actor's derived stats are invalidated",
      security: bearer,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['config'],
        properties: {
          config: full ? gameConfigSchema : gameConfigPatchSchema,
          expectedVersion: versionSchema,
        },
      },
      response: reply200,
    },
  })
  const handler = async (
    request: import('fastify').FastifyRequest<{ Body: Update }>,
    reply: import('fastify').FastifyReply,
  ) => {
    const expected = expectedVersion(request, request.body.expectedVersion)
    const { version, value } = await updateGameConfig(
      request.cache,
      options.cache,
      request.body.config,
      expected,
    )
    tagVersion(reply, version)
    return { id: GAME_CONFIG_KEY, version, config: value }
  }
  app.put<{ Body: Update }>('/config', update(true), handler)
  app.patch<{ Body: Update }>('/config', update(false), handler)
}
