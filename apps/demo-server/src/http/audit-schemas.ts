import { TRACKED } from '../domain/types.js'

const anyValue = { description: 'the value (any JSON), null when none' } as const

/** `?entityType=` of the actor audit routes: which tracked namespace. */
export const entityTypeSchema = {
  type: 'string',
  enum: [...TRACKED],
  description: 'the tracked namespace (default: primary_core)',
} as const

/** A change record as the audit routes return it. */
export const changeRecordSchema = {
  type: 'object',
  required: ['id', 'entityType', 'entityId', 'changeType', 'version', 'timestamp'],
  properties: {
    id: { type: 'string' },
    entityType: { type: 'string' },
    entityId: { type: 'string' },
    changeType: { type: 'string', enum: ['create', 'update', 'delete'] },
    oldValue: anyValue,
    newValue: anyValue,
    timestamp: { type: 'integer', description: 'epoch ms, the database clock' },
    userId: { type: 'string' },
    systemId: { type: 'string' },
    version: { type: 'integer' },
    hash: { type: 'string' },
    prevHash: { type: ['string', 'null'] },
  },
} as const

const digits = (max: number) => ({ type: 'string', pattern: `^[0-9]{1,${max}}$` }) as const
const time = {
  type: 'string',
  minLength: 1,
  maxLength: 40,
  description: 'epoch ms or ISO 8601 date-time',
} as const
const text = { type: 'string', minLength: 1, maxLength: 200 } as const

const filterProperties = {
  entityType: entityTypeSchema,
  entityId: { ...text, description: 'e.g. actor:42' },
  userId: text,
  systemId: text,
  changeType: { type: 'string', enum: ['create', 'update', 'delete'] },
  from: { ...time, description: 'earliest timestamp, inclusive (epoch ms or ISO 8601)' },
  to: { ...time, description: 'latest timestamp, exclusive (epoch ms or ISO 8601)' },
} as const

/** The query string of `GET /audit`. */
export const auditQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterProperties,
    limit: { ...digits(4), description: 'page size, 1 to 1000 (default 100)' },
    cursor: { ...text, maxLength: 1000, description: 'nextCursor of the previous page' },
  },
} as const

/** The query string of `GET /audit/export`. */
export const exportQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: filterProperties,
} as const

/** `{ records, nextCursor? }` */
export const auditPageSchema = {
  type: 'object',
  required: ['records'],
  properties: {
    records: { type: 'array', items: changeRecordSchema },
    nextCursor: {
      type: 'string',
      description: 'pass as cursor for the next page; absent on the last',
    },
  },
} as const

/** The outcome of `verify` (chain) as returned. */
export const chainVerificationSchema = {
  type: 'object',
  required: ['ok', 'entityType', 'entityId'],
  properties: {
    ok: { type: 'boolean' },
    entityType: { type: 'string' },
    entityId: { type: 'string' },
    records: { type: 'integer', description: 'records checked (ok)' },
    head: {
      type: 'object',
      properties: {
        version: { type: 'integer' },
        hash: { type: 'string' },
        exists: { type: 'boolean' },
      },
    },
    version: { type: 'integer', description: 'the first version that does not verify' },
    reason: {
      type: 'string',
      description:
        'hash_mismatch, broken_link, version_gap, duplicate_version, entity_mismatch, time_regression, overlapping_writers, untracked_write',
    },
    detail: { type: 'string' },
  },
} as const

/** A checkpoint of the whole log (as taken, and as given back to verify). */
export const checkpointSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'position', 'records', 'entities', 'digest', 'createdAt'],
  properties: {
    format: { type: 'integer', enum: [1] },
    position: { type: 'string', maxLength: 200 },
    records: { type: 'integer', minimum: 0 },
    entities: { type: 'integer', minimum: 0 },
    digest: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    createdAt: { type: 'integer', minimum: 0 },
    signature: { type: 'string', maxLength: 200 },
  },
} as const

/** The outcome of verifying a checkpoint. */
export const checkpointVerificationSchema = {
  type: 'object',
  required: ['ok'],
  properties: {
    ok: { type: 'boolean' },
    records: { type: 'integer' },
    entities: { type: 'integer' },
    reason: {
      type: 'string',
      description: 'malformed, signature, record_count, position, entity_count, digest',
    },
    detail: { type: 'string' },
  },
} as const

/** An entity's state at a point, or after a rollback. */
export const stateSchema = {
  type: 'object',
  required: ['exists'],
  properties: { exists: { type: 'boolean' }, value: anyValue },
} as const

/** The body of `POST /actors/:id/rollback`: exactly one target. */
export const rollbackBodySchema = {
  type: 'object',
  additionalProperties: false,
  oneOf: [{ required: ['toVersion'] }, { required: ['toTime'] }, { required: ['undo'] }],
  properties: {
    toVersion: { type: 'integer', minimum: 0, description: 'the state at this version' },
    toTime: {
      anyOf: [{ type: 'integer', minimum: 0 }, time],
      description: 'the state at this time (epoch ms or ISO 8601)',
    },
    undo: { ...text, description: 'id of one change to revert (its fields only)' },
    force: {
      type: 'boolean',
      description: 'undo even fields changed again since (their later values are lost)',
    },
    entityType: entityTypeSchema,
  },
} as const
