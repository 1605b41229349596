-- Written in the same transaction as the events they describe.

-- The relay publishes each row to its topic (`coinfold.domain-events`), keyed by aggregate id,
-- with the event id in a header, then marks it published. Rows are relayed in `id` order.
CREATE TABLE outbox
(
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    message_key  text        NOT NULL,
    payload      jsonb       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- A command sent twice with the same key yields its events once: the second call finds the
-- row and returns the stored response. The request hash refuses a reused key with another body.
CREATE TABLE idempotency_keys
(
    scope          text        NOT NULL, -- who sent the command: a user id or a system role
    key            text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    command        text        NOT NULL,
    request_hash   bytea       NOT NULL,
    aggregate_type text,
    aggregate_id   text,
    response       jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
