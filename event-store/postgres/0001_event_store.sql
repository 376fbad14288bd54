-- The event store, as postgres-es 0.5 reads and writes it, plus a global position.
--
-- `events` and `snapshots` keep postgres-es's columns, types and primary keys exactly
-- (its SQL names the columns explicitly, so an extra column is invisible to it). The
-- primary key on (aggregate_type, aggregate_id, sequence) is the optimistic lock:
-- postgres-es turns its unique violation (23505) into AggregateConflict.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Global position of the event in commit order, assigned by the trigger below.
    -- Projections and subscriptions tail the log with
    --   WHERE position > $last ORDER BY position
    -- which is only correct if no event can ever become visible with a position lower
    -- than one a reader has already seen. A plain BIGSERIAL does not give that: two
    -- transactions draw 7 and 8, the one holding 8 commits first, a reader moves past 8
    -- and never sees 7. See docs/adr/02-global-position.md.
    position       bigint                       NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_position ON events (position);

-- Unused while aggregates are plain event-sourced; kept so that switching postgres-es to a
-- snapshot store needs no migration.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Not owned by the column: nothing but the trigger may draw from it.
CREATE SEQUENCE events_position_seq AS bigint;

-- Hands out positions in commit order. The transaction-scoped advisory lock is taken
-- before drawing from the sequence and held until commit or rollback, so a transaction
-- that appends events waits for every earlier appender to finish, and numbers drawn by
-- a later transaction are always higher than those of every transaction that committed
-- before it. A rolled-back transaction leaves a gap, which readers tolerate: they
-- require increasing positions, not consecutive ones.
--
-- The two-int key (0x41434553 = 'ACES', 1) is reserved for this lock; two-int advisory
-- keys never collide with the single-bigint key sqlx's migrator locks on.
--
-- pg_notify is delivered only when (and if) the transaction commits, which is exactly
-- when a tailer waiting on LISTEN access_events can read the new event.
CREATE FUNCTION events_assign_position() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_advisory_xact_lock(1094927699, 1);
    NEW.position := nextval('events_position_seq');
    PERFORM pg_notify('access_events', NEW.position::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_assign_position
    BEFORE INSERT ON events
    FOR EACH ROW
EXECUTE FUNCTION events_assign_position();

-- Help-desk ticket numbers are system-wide and must never repeat, even across server
-- processes; a sequence is exactly that (gaps after a failed request are acceptable).
CREATE SEQUENCE help_desk_ticket_seq AS bigint;
