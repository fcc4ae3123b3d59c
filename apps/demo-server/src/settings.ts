import { readFile } from 'node:fs/promises'
import {
  type CacheConfig,
  type ConfigIssue,
  InvalidConfigError,
  parseCacheConfig,
} from '@actor-cache/core'
import {
  type AccessPolicy,
  type EncryptedNamespaces,
  OPERATIONS,
  type Operation,
} from '@actor-cache/security'
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
  /** Fields stored encrypted (`demo.encryption`); none when the section is absent. */
  encryption: EncryptionSettings | undefined
}

/** What is encrypted in Redis and PostgreSQL, with which keys, and who sees it in clear. */
export interface EncryptionSettings {
  /** Encrypted fields per namespace (dotted paths), or `'value'` (whole), as `encryptTier` takes them. */
  fields: EncryptedNamespaces
  /** Roles that get these fields in clear from the API; others get `[REDACTED]`. */
  revealRoles: readonly string[]
  keys: KeySettings
}

/** The keys of {@link EncryptionSettings}, from the environment or the file's demo key. */
export interface KeySettings {
  /** Variables `<envPrefix><ID>` hold base64 keys (`ACTOR_CACHE_KEY_`). */
  envPrefix: string
  /** Variable naming the primary key id (`ACTOR_CACHE_PRIMARY_KEY`). */
  primaryEnv: string
  /** The key used when no variable holds one: public, for the demo only. */
  demoKey: string | undefined
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
const fieldPath = z
  .string()
  .regex(/^[^.\s]+(\.[^.\s]+)*$/, 'a dotted field path like "account.email"')
const actorNamespace = z.enum(['primary_core', 'flexible_stats'])
const encryptionSchema = z.strictObject({
  fields: z.partialRecord(actorNamespace, z.array(fieldPath).min(1)),
  whole_namespaces: z
    .array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'a namespace name'))
    .default([]),
  reveal_roles: z.array(z.string().min(1)).default([]),
  keyring: z
    .strictObject({
      env_prefix: z
        .string()
        .regex(/^[A-Z][A-Z0-9_]*_$/, 'an environment variable prefix like "ACTOR_CACHE_KEY_"')
        .default('ACTOR_CACHE_KEY_'),
      primary_env: z
        .string()
        .regex(/^[A-Z][A-Z0-9_]*$/, 'an environment variable name')
        .default('ACTOR_CACHE_PRIMARY_KEY'),
      demo_key: z.string().min(1).optional(),
    })
    .prefault({}),
})
const auditSchema = z.strictObject({
  read_roles: roleList,
  rollback_roles: roleList,
  checkpoint_roles: roleList,
  sensitive_fields: z.partialRecord(actorNamespace, z.array(fieldPath)).default({}),
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
    encryption: encryptionSchema.optional(),
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
    demo.encryption?.reveal_roles.forEach((role, i) => {
      if (!Object.hasOwn(demo.roles, role)) {
        ctx.addIssue({
          code: 'custom',
          path: ['encryption', 'reveal_roles', i],
          message: `unknown role "${role}"`,
        })
      }
    })
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
  const encryption = d.encryption
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
    encryption:
      encryption === undefined
        ? undefined
        : {
            fields: {
              ...(encryption.fields as EncryptedNamespaces),
              ...Object.fromEntries(encryption.whole_namespaces.map((n) => [n, 'value'])),
            },
            revealRoles: encryption.reveal_roles,
            keys: {
              envPrefix: encryption.keyring.env_prefix,
              primaryEnv: encryption.keyring.primary_env,
              demoKey: encryption.keyring.demo_key,
            },
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

/**
 * The settings with every encrypted field of `demo.encryption` also among the audit's sensitive
 * fields: a field secret enough to encrypt is masked wherever the audit trail shows values.
 */
export function withEncryptedFieldsMasked(settings: ServerSettings): ServerSettings {
  const encrypted = settings.demo.encryption?.fields
  if (encrypted === undefined) return settings
  const sensitiveFields: Record<string, readonly string[]> = {
    ...settings.demo.audit.sensitiveFields,
  }
  for (const [namespace, fields] of Object.entries(encrypted)) {
    if (fields === 'value') continue // a namespace encrypted whole (responses) is not tracked
    const listed = sensitiveFields[namespace] ?? []
    sensitiveFields[namespace] = [...new Set([...listed, ...fields])]
  }
  const audit = { ...settings.demo.audit, sensitiveFields }
  return { ...settings, demo: { ...settings.demo, audit } }
}

/** Reads and parses the file at `path` (the shipped one by default). */
export async function loadSettings(
  path: string = DEFAULT_CONFIG_PATH,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<ServerSettings> {
  return parseSettings(await readFile(path, 'utf8'), { source: path, env })
}
