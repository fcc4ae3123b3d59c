import type { FastifyReply, FastifyRequest } from 'fastify'
import { HttpError } from './errors.js'

const TAG = /^(?:W\/)?"?(\d{1,16})"?$/

/**
 * The version a write expects: the `If-Match` header (`"3"`, `W/"3"` or `3`) or the body's
 * `expectedVersion`; both given must agree. `0` means "must not exist yet".
 */
export function expectedVersion(
  request: FastifyRequest,
  fromBody: number | undefined,
): number | undefined {
  const header = request.headers['if-match']
  if (header === undefined) return fromBody
  const match = TAG.exec(header.trim())
  if (match === null) {
    throw new HttpError(
      400,
      'E_BAD_REQUEST',
      `If-Match must be a version like "3", got ${JSON.stringify(header)}`,
    )
  }
  const version = Number(match[1])
  if (fromBody !== undefined && fromBody !== version) {
    throw new HttpError(
      400,
      'E_BAD_REQUEST',
      `If-Match says version ${version} but the body's expectedVersion is ${fromBody}`,
    )
  }
  return version
}

/** Sets the ETag of a versioned response. */
export function tagVersion(reply: FastifyReply, version: number): void {
  void reply.header('etag', `"${version}"`)
}
