-- Versioned deletes leave a tombstone: the row keeps the delete's version, so a write with an
-- older version that arrives later (a replayed or reordered write-behind write) is ignored. A
-- tombstone is never read; it expires like any row (expires_at) and prune() removes it.
ALTER TABLE "ac_cache_entries" ADD COLUMN "deleted" BOOLEAN NOT NULL DEFAULT false;
