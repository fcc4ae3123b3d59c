import { readFile } from 'node:fs/promises'
import {
  type CacheConfig,
  type ConfigIssue,
  InvalidConfigError,
  parseCacheConfig,
} from '@actor-cache/core'
import { type AccessPolicy, OPERATIONS, type Operation } from '@actor-cache/security'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { z } from 'zod'

/** The configuration file shipped with the app. */
export const DEFAULT_CONFIG_PATH: string = new URL('../config/demo-server.yaml', import.meta.url)
  .pathname

/** Who a bearer token stands for. */
export interface TokenOwner {
  id: string
  role: string
}

/** The `demo:` section of the file, normalised. */
export interface DemoSettings {
  seedActors: number
  policy: AccessPolicy
  tokens: ReadonlyMap<string, TokenOwner>
  rateLimit: { points: number; duration: number } | undefined
  audit: AuditSettings
}

/** Who may use the audit routes, and which fields they mask (`demo.audit`). */
export interface AuditSettings {
  /** Roles that may read histories, the audit trail, its export, verifications, past states. */
  readRoles: readonly string[]
  /** Roles that may roll an actor back (the write is also checked against the role's grants). */
  rollbackRoles: readonly string[]
  /** Roles that may take and verify checkpoints of the whole log. */
  checkpointRoles: readonly string[]
  /** Fields masked in audit responses and exports, per tracked namespace (dotted paths). */
  sensitiveFields: Readonly<Record<string, readonly string[]>>
}

/** The whole file: the cache's configuration and the app's own section. */
export interface ServerSettings {
  /** Path of the file read, for messages. */
  source: string
  cache: CacheConfig
  demo: DemoSettings
}

const operation = z.enum(OPERATIONS as [Operation, ...Operation[]])
const grant = z.strictObject({
  namespaces: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  operations: z.union([z.literal('*'), z.array(operation).min(1)]),
})
const budget = z.strictObject({ points: z.int().min(1), duration: z.int().min(1) })
const roleList = z.array(z.string().min(1)).min(1)
const auditSchema = z.strictObject({
  read_roles: roleList,
  rollback_roles: roleList,
  checkpoint_roles: roleList,
  sensitive_fields: z
    .partialRecord(
      z.enum(['primary_core', 'flexible_stats']),
      z.array(
        z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, 'a dotted field path like "account.email"'),
      ),
    )
    .default({}),
})
const demoSchema = z
  .strictObject({
    seed_actors: z.int().min(0).max(1_000_000).default(5000),
    roles: z.record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/), z.array(grant)),
    tokens: z.record(
      z.string().min(8, 'a token has at least 8 characters'),
      z.strictObject({ id: z.string().min(1).max(128), role: z.string().min(1) }),
    ),
    rate_limit: budget.optional(),
    audit: auditSchema,
  })
  .superRefine((demo, ctx) => {
    for (const [token, owner] of Object.entries(demo.tokens)) {
      if (!Object.hasOwn(demo.roles, owner.role)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tokens', token, 'role'],
          message: `unknown role "${owner.role}" (roles: ${Object.keys(demo.roles).join(', ')})`,
        })
      }
    }
    for (const list of ['read_roles', 'rollback_roles', 'checkpoint_roles'] as const) {
      demo.audit[list].forEach((role, i) => {
        if (!Object.hasOwn(demo.roles, role)) {
          ctx.addIssue({
            code: 'custom',
            path: ['audit', list, i],
            message: `unknown role "${role}"`,
          })
        }
      })
    }
  })

function parseDemo(value: unknown, source: string): DemoSettings {
  const result = demoSchema.safeParse(value)
  if (!result.success) {
    const issues: ConfigIssue[] = result.error.issues.map((i) => ({
      path: ['demo', ...i.path.map(String)].join('.'),
      message: i.message,
    }))
    throw new InvalidConfigError(issues, { source })
  }
  const d = result.data
  return {
    seedActors: d.seed_actors,
    policy: { roles: d.roles },
    tokens: new Map(Object.entries(d.tokens)),
    rateLimit: d.rate_limit,
    audit: {
      readRoles: d.audit.read_roles,
      rollbackRoles: d.audit.rollback_roles,
      checkpointRoles: d.audit.checkpoint_roles,
      sensitiveFields: d.audit.sensitive_fields,
    },
  }
}

function parseDocument(text: string, source: string): Record<string, unknown> {
  let data: unknown
  try {
    data = parseYaml(text, { maxAliasCount: 50, uniqueKeys: true })
  } catch (error) {
    const where =
      error instanceof YAMLParseError && error.linePos ? `line ${error.linePos[0].line}` : ''
    throw new InvalidConfigError(
      [{ path: where, message: `YAML syntax error: ${(error as Error).message}` }],
      { source, cause: error },
    )
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidConfigError([{ path: '', message: 'expected a mapping of sections' }], {
      source,
    })
  }
  return data as Record<string, unknown>
}

/**
 * Parses the server's YAML: the `demo:` section here, everything else with core's
 * `parseCacheConfig` (with `env` for `${NAME}` substitution).
 * @throws {InvalidConfigError} naming the file and the path of each problem
 */
export function parseSettings(
  text: string,
  options: { source: string; env?: Readonly<Record<string, string | undefined>> },
): ServerSettings {
  const { demo, ...cacheSection } = parseDocument(text, options.source)
  if (demo === undefined) {
    throw new InvalidConfigError([{ path: 'demo', message: 'the demo: section is missing' }], {
      source: options.source,
    })
  }
  const cache = parseCacheConfig(cacheSection, {
    source: options.source,
    ...(options.env === undefined ? {} : { env: options.env }),
  })
  return { source: options.source, cache, demo: parseDemo(demo, options.source) }
}

/** Reads and parses the file at `path` (the shipped one by default). */
export async function loadSettings(
  path: string = DEFAULT_CONFIG_PATH,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<ServerSettings> {
  return parseSettings(await readFile(path, 'utf8'), { source: path, env })
}
