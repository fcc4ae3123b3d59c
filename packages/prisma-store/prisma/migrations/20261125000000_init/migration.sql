-- Actor Cache L3 tables. Runs on PostgreSQL 15+ and PGlite.

-- Cache entries: the L3 copy of each envelope, one row per (namespace, key).
CREATE TABLE "ac_cache_entries" (
    "namespace"  TEXT NOT NULL,
    "key"        TEXT NOT NULL,
    "value"      TEXT NOT NULL,
    "encoding"   CHAR(1) NOT NULL DEFAULT 't',
    "version"    BIGINT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3),
    "tags"       TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ac_cache_entries_pkey" PRIMARY KEY ("namespace", "key"),
    CONSTRAINT "ac_cache_entries_encoding_check" CHECK ("encoding" IN ('t', 'b')),
    CONSTRAINT "ac_cache_entries_version_check" CHECK ("version" >= 1)
);

CREATE INDEX "ac_cache_entries_expires_at_idx" ON "ac_cache_entries" ("expires_at");

-- State changes: append-only, one row per entity version.
CREATE TABLE "ac_state_changes" (
    "seq"         BIGSERIAL NOT NULL,
    "id"          TEXT NOT NULL,
    "entity_type" TEXT NOT NULL,
    "entity_id"   TEXT NOT NULL,
    "change_type" TEXT NOT NULL,
    "old_value"   TEXT,
    "new_value"   TEXT,
    "timestamp"   TIMESTAMPTZ(3) NOT NULL,
    "user_id"     TEXT NOT NULL,
    "system_id"   TEXT NOT NULL,
    "version"     BIGINT NOT NULL,
    "txid"        XID8 NOT NULL DEFAULT pg_current_xact_id(),
    "hash"        TEXT,
    "prev_hash"   TEXT,

    CONSTRAINT "ac_state_changes_pkey" PRIMARY KEY ("seq"),
    CONSTRAINT "ac_state_changes_change_type_check" CHECK ("change_type" IN ('create', 'update', 'delete')),
    CONSTRAINT "ac_state_changes_version_check" CHECK ("version" >= 1)
);

CREATE UNIQUE INDEX "ac_state_changes_id_key" ON "ac_state_changes" ("id");
CREATE UNIQUE INDEX "ac_state_changes_entity_version_key" ON "ac_state_changes" ("entity_type", "entity_id", "version");
CREATE INDEX "ac_state_changes_user_idx" ON "ac_state_changes" ("user_id", "timestamp");
CREATE INDEX "ac_state_changes_time_idx" ON "ac_state_changes" ("timestamp");

-- Writes that can never be applied.
CREATE TABLE "ac_dead_letters" (
    "id"         BIGSERIAL NOT NULL,
    "namespace"  TEXT NOT NULL,
    "key"        TEXT NOT NULL,
    "payload"    TEXT NOT NULL,
    "error"      TEXT NOT NULL,
    "attempts"   INTEGER NOT NULL,
    "first_seen" TIMESTAMPTZ(3) NOT NULL,
    "last_seen"  TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ac_dead_letters_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "ac_dead_letters_entry_idx" ON "ac_dead_letters" ("namespace", "key");
