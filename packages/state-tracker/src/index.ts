export {
  ChangeRelay,
  type ChangeRelayOptions,
  type ChangeRelayStats,
  createChangeRelay,
  type RelayRole,
} from './change-relay.js'
export {
  ChangeStream,
  type ChangeStreamOptions,
  type ChangeStreamStats,
  createChangeStream,
} from './change-stream.js'
export {
  ChangeSubscription,
  type SubscriptionMode,
  type SubscriptionStats,
} from './change-subscription.js'
export type {
  ChainCheckpoint,
  CheckpointBreakReason,
  CheckpointVerification,
  ProgressListener,
} from './checkpoint.js'
export { type ChangeAuthor, currentAuthor, trackAs } from './context.js'
export type { RelayStats } from './local-relay.js'
export { MASK, type SensitiveFields } from './masking.js'
export type { ConflictPolicy, FieldMerge, MergeFunction, MergeRules } from './merge.js'
export type {
  EntityWriter,
  RollbackOptions,
  RollbackResult,
  RollbackTarget,
} from './rollback.js'
export type { EntityStateAt, PointInTime } from './state-at.js'
export {
  createStateTracker,
  type LogScanOptions,
  StateTracker,
  type StateTrackerOptions,
} from './state-tracker.js'
export type {
  ChangeFilter,
  SubscribeFrom,
  SubscribeOptions,
} from './stream-options.js'
export type { ExpectedVersion, TrackChangeInput, TrackChangeOptions } from './track-input.js'
export type { ChainBreakReason, ChainHead, ChainVerification, StoredState } from './verify-chain.js'
export type { TrackedNamespaceOptions, TrackedNamespaces } from './write-tracking.js'
