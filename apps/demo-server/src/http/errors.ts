import { STATUS_CODES } from 'node:http'
import {
  ActorCacheError,
  ConflictError,
  type ErrorCode,
  RateLimitedError,
  UndoConflictError,
} from '@actor-cache/core'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { NotFoundError } from '../domain/errors.js'

/** An error of the HTTP layer with its status (bad header, missing token). */
export class HttpError extends Error {
  readonly statusCode: number
  readonly code: string
  constructor(statusCode: number, code: string, message: string) {
    super(message)
    this.name = 'HttpError'
    this.statusCode = statusCode
    this.code = code
  }
}

/** The body of every error response. */
export interface ErrorBody {
  statusCode: number
  error: string
  code: string
  message: string
  expectedVersion?: number
  actualVersion?: number
  retryAfterMs?: number
  /** E_UNDO_CONFLICT: the change that was to be undone. */
  changeId?: string
  /** E_UNDO_CONFLICT: its fields changed again since (`""`: the whole value). */
  fields?: string[]
  issues?: { path: string; message: string }[]
}

/** Status of each Actor Cache error code. */
const STATUS: Readonly<Record<ErrorCode, number>> = {
  E_INVALID_KEY: 400,
  E_INVALID_OPTION: 400,
  E_INVALID_CONFIG: 400,
  E_SERIALIZATION: 400,
  E_VALUE_TOO_LARGE: 400,
  E_FORBIDDEN: 403,
  E_CONFLICT: 409,
  E_UNDO_CONFLICT: 409,
  E_RATE_LIMITED: 429,
  E_QUEUE_FULL: 503,
  E_TIER_UNAVAILABLE: 503,
  E_TIMEOUT: 503,
  E_CLOSED: 503,
  E_LEASE_LOST: 503,
  E_WRITE_REJECTED: 500,
  E_DECODE: 500,
  E_DECRYPT: 500,
}

/** A response for `error`: status, body and headers. Unknown errors are 500 without details. */
export function toResponse(error: unknown): {
  body: ErrorBody
  headers: Record<string, string>
} {
  const reply = (statusCode: number, code: string, message: string): ErrorBody => ({
    statusCode,
    error: STATUS_CODES[statusCode] ?? 'Error',
    code,
    message,
  })
  if (error instanceof ActorCacheError) {
    const status = STATUS[error.code] ?? 500
    const body = reply(status, error.code, status === 500 ? 'internal error' : error.message)
    if (error instanceof ConflictError) {
      body.expectedVersion = error.expectedVersion
      body.actualVersion = error.actualVersion
    }
    if (error instanceof UndoConflictError) {
      body.changeId = error.changeId
      body.fields = [...error.fields]
    }
    if (error instanceof RateLimitedError) {
      body.retryAfterMs = error.retryAfterMs
      const seconds = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)))
      return { body, headers: { 'retry-after': seconds } }
    }
    return { body, headers: status === 503 ? { 'retry-after': '1' } : {} }
  }
  if (error instanceof NotFoundError)
    return { body: reply(404, error.code, error.message), headers: {} }
  if (error instanceof HttpError) {
    const headers: Record<string, string> =
      error.statusCode === 401 ? { 'www-authenticate': 'Bearer realm="actor-cache-demo"' } : {}
    return { body: reply(error.statusCode, error.code, error.message), headers }
  }
  const fastify = error as Partial<FastifyError>
  if (fastify.validation !== undefined) {
    const body = reply(400, 'E_BAD_REQUEST', fastify.message ?? 'bad request')
    body.issues = fastify.validation.map((v) => ({
      path: `${fastify.validationContext ?? ''}${v.instancePath}`,
      message: v.message ?? 'invalid',
    }))
    return { body, headers: {} }
  }
  const status = fastify.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return {
      body: reply(status, fastify.code ?? 'E_BAD_REQUEST', fastify.message ?? ''),
      headers: {},
    }
  }
  return { body: reply(500, 'E_INTERNAL', 'internal error'), headers: {} }
}

/** Fastify's error handler: typed errors become their status; 5xx are logged. */
export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { body, headers } = toResponse(error)
  if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed')
  void reply.code(body.statusCode).headers(headers).send(body)
}

/** The JSON schema of {@link ErrorBody}. */
export const errorSchema = {
  type: 'object',
  required: ['statusCode', 'error', 'code', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    code: { type: 'string', description: 'stable code: E_CONFLICT, E_FORBIDDEN, ...' },
    message: { type: 'string' },
    expectedVersion: { type: 'integer', description: '409: the version the request expected' },
    actualVersion: { type: 'integer', description: '409: the version stored' },
    retryAfterMs: { type: 'integer', description: '429: when to retry' },
    changeId: { type: 'string', description: 'E_UNDO_CONFLICT: the change to undo' },
    fields: {
      type: 'array',
      items: { type: 'string' },
      description: 'E_UNDO_CONFLICT: fields changed again since ("": the whole value)',
    },
    issues: {
      type: 'array',
      items: {
        type: 'object',
        properties: { path: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const
