import type { CacheTier, Serializer } from '@actor-cache/core'
import {
  CENSOR,
  createKeyring,
  encryptedSerializer,
  encryptTier,
  type Keyring,
  keyringFromEnv,
  maskValue,
  type Principal,
} from '@actor-cache/security'
import type { EncryptionSettings } from './settings.js'
import { StartupError } from './startup-error.js'

/** Id of the file's demo key in the keyring (and in every envelope it seals). */
export const DEMO_KEY_ID = 'demo'

/**
 * The encryption of `demo.encryption`: the tiers that store bytes (Redis, PostgreSQL) hold the
 * listed fields as AES-256-GCM envelopes, and the change log holds old and new values encrypted
 * whole. L1 holds plaintext in process memory.
 */
export interface FieldEncryption {
  /** The tier with the listed fields encrypted on the way down, decrypted on the way up. */
  wrap(tier: CacheTier): CacheTier
  /** The change log's serializer: the store writes records with it and the log reads them. */
  readonly changeSerializer: Serializer
  /** Where the keys came from, for the start-up banner. */
  readonly keySource: string
  /** True when the keys are the file's public demo key. */
  readonly demoKey: boolean
}

function keyringOf(
  settings: EncryptionSettings,
  env: Readonly<Record<string, string | undefined>>,
): { keyring: Keyring; source: string; demoKey: boolean } {
  const { envPrefix, primaryEnv, demoKey } = settings.keys
  const fromEnv = Object.keys(env).some(
    (n) => n.startsWith(envPrefix) && n.length > envPrefix.length,
  )
  try {
    if (fromEnv) {
      const keyring = keyringFromEnv(env, { prefix: envPrefix, primaryVariable: primaryEnv })
      return {
        keyring,
        source: `${envPrefix}<ID> variables (primary key "${keyring.primary}")`,
        demoKey: false,
      }
    }
    if (demoKey !== undefined) {
      return {
        keyring: createKeyring({ keys: [{ id: DEMO_KEY_ID, key: demoKey }] }),
        source:
          'the demo key of the configuration file: NOT FOR PRODUCTION (it is public), set ACTOR_CACHE_KEY_<ID>',
        demoKey: true,
      }
    }
  } catch (error) {
    // the message names the variable or option, never the key
    throw new StartupError(
      `the encryption keys cannot be read: ${(error as Error).message}`,
      `set ${envPrefix}<ID> to 32 random bytes in base64 (node -e "console.log(require('node:crypto').randomBytes(32).toString('base64'))")`,
      error,
    )
  }
  throw new StartupError(
    `demo.encryption lists fields to encrypt but no key is set (no ${envPrefix}<ID> variable, no demo_key)`,
    `set ${envPrefix}<ID> to 32 random bytes in base64, or remove demo.encryption`,
  )
}

/** The encryption the settings ask for, with its keyring from `env` (or the file's demo key). */
export function openEncryption(
  settings: EncryptionSettings,
  env: Readonly<Record<string, string | undefined>>,
): FieldEncryption {
  const { keyring, source, demoKey } = keyringOf(settings, env)
  const options = { keyring, namespaces: settings.fields }
  return {
    wrap: (tier) => encryptTier(tier, options),
    changeSerializer: encryptedSerializer({ keyring }),
    keySource: source,
    demoKey,
  }
}

/**
 * A value of `namespace` as `principal` may see it: the encrypted fields in clear for the
 * settings' `reveal_roles`, `[REDACTED]` for everyone else.
 */
export function revealTo<V>(
  principal: Principal,
  settings: EncryptionSettings | undefined,
  namespace: string,
  value: V,
): V {
  if (settings === undefined) return value
  if (principal.roles.some((r) => settings.revealRoles.includes(r))) return value
  return maskValue(settings.fields, namespace, value, CENSOR) as V
}
