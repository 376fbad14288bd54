-- The commit-order positions of 0001, paid per statement instead of per row.
--
-- 0001's row trigger ran PL/pgSQL for every event: the append lock (already held after
-- the first row), `nextval`, and a notification of its own. A group of commands appends
-- a few dozen events in one statement, so each commit queued that many notifications,
-- and every listening server read each one and woke its views for it, though one told
-- them all they needed: how far the log now reaches (docs/performance.md).
--
-- The guarantee is unchanged (docs/adr/02-global-position.md): the statement takes the
-- append lock before its first row draws a position, since PostgreSQL fires BEFORE
-- STATEMENT triggers before it reads any row to insert. After the statement, one
-- notification carries the highest position it inserted, delivered at commit only.

DROP TRIGGER events_assign_position ON events;
DROP FUNCTION events_assign_position();

-- An identity column draws from its sequence as each row is formed, and refuses a
-- position a writer names itself (as 0001's trigger overwrote it), so every writer, raw
-- SQL included, still gets its positions from the lock's order. It continues where
-- 0001's sequence stopped.
ALTER TABLE events ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('events', 'position'), last_value, is_called)
  FROM events_position_seq;
DROP SEQUENCE events_position_seq;

CREATE FUNCTION events_take_append_lock() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_advisory_xact_lock(1094927699, 1);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_take_append_lock
    BEFORE INSERT ON events
    FOR EACH STATEMENT
EXECUTE FUNCTION events_take_append_lock();

CREATE FUNCTION events_notify_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    head bigint;
BEGIN
    SELECT MAX(position) INTO head FROM appended;
    IF head IS NOT NULL THEN
        PERFORM pg_notify('access_events', head::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify_appended
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT
EXECUTE FUNCTION events_notify_appended();
