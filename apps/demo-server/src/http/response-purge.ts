import { MAX_TAGS } from '@actor-cache/core'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { DemoCache } from '../stack.js'
import type { PurgeTags } from './response-policy.js'

/** One purge, as the purge hook gets it. */
export interface Purge {
  /** The tags purged: the `Surrogate-Key`s of the responses to drop. */
  readonly tags: readonly string[]
  /** The write that caused it: `PATCH`, `/actors/42`. */
  readonly method: string
  readonly url: string
}

/**
 * Where a CDN purge call goes: called once per write that purged tags, after the server's own
 * response cache dropped them and before the write is answered. It is not awaited (a CDN's API
 * is slow and may be down: the write has happened); a throw or rejection is logged.
 */
export type PurgeHook = (purge: Purge) => unknown

/** The `onSend` hook of a write route: purges the tags `tagsOf` gives. */
export type PurgeOnSend = (
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
) => Promise<unknown>

/** Purges responses by tag: the cache's tag invalidation (every tier, every instance), then the hook. */
export interface ResponsePurger {
  purge(
    tags: readonly string[],
    from: { method: string; url: string; log: FastifyBaseLogger },
  ): Promise<void>
  /** The `onSend` hook that purges a write route's tags once it answered other than 4xx. */
  onSend(tagsOf: PurgeTags): PurgeOnSend
}

const logOnly: PurgeHook = () => {}

function callHook(hook: PurgeHook, purge: Purge, log: FastifyBaseLogger): void {
  const failed = (err: unknown) => log.warn({ err, tags: purge.tags }, 'the purge hook failed')
  try {
    const result = hook(purge)
    if (result instanceof Promise) result.catch(failed)
  } catch (error) {
    failed(error)
  }
}

/**
 * The purger over `cache`. Tag invalidation marks each tag's time in this instance before it
 * resolves and reaches other instances through the bus; a response loaded while one of its tags
 * was purged is not kept, so no read after the write is answered from before it.
 * @param hook the purge hook; by default the purge is only logged (debug)
 */
export function createResponsePurger(cache: DemoCache, hook: PurgeHook = logOnly): ResponsePurger {
  const purge: ResponsePurger['purge'] = async (tags, from) => {
    const unique = [...new Set(tags)]
    if (unique.length === 0) return
    // at most MAX_TAGS tags per invalidation
    for (let i = 0; i < unique.length; i += MAX_TAGS) {
      await cache.invalidate({ tags: unique.slice(i, i + MAX_TAGS) })
    }
    from.log.debug({ tags: unique }, 'responses purged')
    callHook(hook, { tags: unique, method: from.method, url: from.url }, from.log)
  }
  return {
    purge,
    onSend: (tagsOf) => async (request, reply, payload) => {
      // a refused write (400, 403, 404, 409, 429) wrote nothing; a 5xx may have written some
      const status = reply.statusCode
      if (status >= 400 && status < 500) return payload
      let tags: readonly string[]
      try {
        tags = tagsOf(request)
      } catch (error) {
        // an event without a rule answered 4xx already; anything else: purge nothing, say so
        request.log.warn({ err: error }, 'the tags of a write could not be worked out')
        return payload
      }
      await purge(tags, { method: request.method, url: request.url, log: request.log })
      return payload
    },
  }
}
