-- The ordered change feed reads by (txid, seq) below the oldest running transaction.
CREATE INDEX "ac_state_changes_feed_idx" ON "ac_state_changes" ("txid", "seq");

-- Audit queries by entity, by system and by change type.
CREATE INDEX "ac_state_changes_system_idx" ON "ac_state_changes" ("system_id", "timestamp");
