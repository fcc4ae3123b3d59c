export type { Binding } from './aes-gcm.js'
export type {
  AuditEvent,
  AuditLogger,
  AuditOptions,
  AuditOutcome,
} from './audit.js'
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
  type GuardableCache,
  type GuardableNamespace,
  type GuardBatchLoader,
  GuardedCache,
  GuardedNamespace,
  type GuardLoader,
  type GuardOptions,
  type GuardTarget,
  type GuardValueLoader,
  guardCache,
  PrincipalView,
} from './guard.js'
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
