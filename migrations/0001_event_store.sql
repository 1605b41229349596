-- The event store: postgres-es's `events` and `snapshots` tables (jsonb instead of json),
-- extended with a global position and the writing transaction's id. See
-- docs/adr/0001-global-log-high-water-mark.md for why positions are assigned the way they are.

-- CACHE 1 is required, not a tuning choice: the reader's high-water mark reads the sequence's
-- last value and relies on no session holding back cached values below it.
CREATE SEQUENCE events_global_position_seq AS bigint START 1 CACHE 1;

CREATE TABLE events
(
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL CHECK (sequence >= 0),
    event_type      text   NOT NULL,
    event_version   text   NOT NULL,
    payload         jsonb  NOT NULL,
    metadata        jsonb  NOT NULL,
    -- Both assigned by the trigger below, whatever the INSERT says.
    global_position bigint NOT NULL,
    transaction_id  xid8   NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

ALTER SEQUENCE events_global_position_seq OWNED BY events.global_position;
CREATE UNIQUE INDEX events_global_position_idx ON events (global_position);

-- Assigns the global position on insert. The order of the two calls is the whole point:
-- the transaction gets its id *before* it takes a position, so every position handed out
-- belongs to a transaction whose id is already below any later snapshot's xmax. The reader
-- (coinfold_projections::global_log) builds its high-water mark on exactly that.
CREATE FUNCTION events_assign_position() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    NEW.transaction_id := pg_current_xact_id();
    NEW.global_position := nextval('events_global_position_seq');
    RETURN NEW;
END
$$;

CREATE TRIGGER events_assign_position
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_position();

-- The log is append-only: auditors rely on it, and upcasting happens when events are read.
CREATE FUNCTION events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'the event store is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_refuse_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_refuse_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Snapshots, as postgres-es expects them (only used when snapshotting is configured).
CREATE TABLE snapshots
(
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
