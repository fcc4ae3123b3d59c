-- Tracked writes (PrismaStore.writeWithChange) write an entity and its change record in one
-- transaction. The row names the newest change record of its entity (its hash and timestamp), so
-- the next tracked write links to it under the row's lock. A tombstone keeps both, as it keeps
-- its version. Untracked writes leave them as they are.
ALTER TABLE "ac_cache_entries" ADD COLUMN "change_hash" TEXT;
ALTER TABLE "ac_cache_entries" ADD COLUMN "change_at" TIMESTAMPTZ(3);
