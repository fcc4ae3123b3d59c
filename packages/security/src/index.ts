export type { Binding, LabelBinding } from './aes-gcm.js'
export type {
  AuditEvent,
  AuditLogger,
  AuditOptions,
  AuditOutcome,
} from './audit.js'
export {
  type EncryptedSerializerOptions,
  encryptedSerializer,
} from './change-serializer.js'
export { currentPrincipal, runAs } from './context.js'
export {
  ENCRYPTED_PREFIX,
  type EncryptedNamespaces,
  type EncryptionTransformOptions,
  type EncryptTierOptions,
  encryptionTransform,
  encryptTier,
  storedKeyId,
} from './encryption.js'
export {
  type GuardedCache,
  guardCache,
  type PrincipalView,
} from './guard.js'
export type { GuardOptions } from './guard-checks.js'
export type { GuardableCache, GuardableNamespace, GuardTarget } from './guardable.js'
export {
  createKeyring,
  type EnvKeyringOptions,
  Keyring,
  type KeyringKey,
  type KeyringOptions,
  keyringFromEnv,
  keyringFromFile,
  keyringFromKms,
} from './keyring.js'
export {
  CENSOR,
  maskValue,
  type RedactPathsOptions,
  redactPaths,
  type SensitiveFields,
} from './masking.js'
export {
  type AccessPolicy,
  type Grant,
  OPERATIONS,
  type Operation,
  type Principal,
} from './policy.js'
export {
  createRateLimiter,
  type RateBudget,
  type RateLimiter,
  type RateLimitOptions,
} from './rate-limit.js'
