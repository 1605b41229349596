-- One row per projection: where it has read up to. A projection writes this row in the same
-- transaction as its read-model changes, so a crash never double-applies or skips.
CREATE TABLE projection_checkpoints
(
    projection text PRIMARY KEY,
    -- 'event-store' (position is the last applied global position) or 'kafka:<topic>'
    -- (offsets holds the next offset to read per partition, {"0": 42, ...}).
    source     text        NOT NULL,
    position   bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    offsets    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state      text        NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'rebuilding', 'paused', 'failed')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Read models live in their own schema, so a rebuild can build shadow tables beside them.
CREATE SCHEMA read;
