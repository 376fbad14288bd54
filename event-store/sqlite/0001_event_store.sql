-- The event store, as sqlite-es 0.5 reads and writes it, plus a global position.
--
-- `events` and `snapshots` keep sqlite-es's columns, types and primary keys exactly
-- (its SQL names the columns explicitly, so an extra column is invisible to it). The
-- primary key on (aggregate_type, aggregate_id, sequence) is the optimistic lock:
-- sqlite-es turns its violation (extended code 1555) into AggregateConflict.
CREATE TABLE events
(
  aggregate_type text                          NOT NULL,
  aggregate_id   text                          NOT NULL,
  sequence       integer CHECK (sequence >= 0) NOT NULL,
  event_type     text                          NOT NULL,
  event_version  text                          NOT NULL,
  payload        text                          NOT NULL,
  metadata       text                          NOT NULL,
  -- Global position of the event in commit order, set by the trigger below; projections
  -- tail the log with WHERE position > ? ORDER BY position. Nullable only because SQLite
  -- cannot compute it in a DEFAULT or a BEFORE trigger: the row is inserted without it and
  -- the AFTER trigger fills it in within the same statement, so no other connection ever
  -- sees a NULL. See docs/adr/02-global-position.md.
  position       integer,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_position ON events (position);

-- Unused while aggregates are plain event-sourced; kept so that switching sqlite-es to a
-- snapshot store needs no migration.
CREATE TABLE snapshots
(
  aggregate_type   text                                  NOT NULL,
  aggregate_id     text                                  NOT NULL,
  last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
  current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
  payload          text                                  NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- SQLite lets one transaction write at a time and holds the write lock until commit, so
-- "one more than the highest position so far", computed inside the writing transaction,
-- is commit order: no reader can see a higher position before this one is committed.
-- (The rowid would look like a free counter, but VACUUM may renumber it.) MAX uses the
-- unique index, so this costs one index lookup per event.
CREATE TRIGGER events_assign_position
  AFTER INSERT ON events
  FOR EACH ROW
BEGIN
  UPDATE events
     SET position = (SELECT COALESCE(MAX(position), 0) + 1 FROM events)
   WHERE aggregate_type = NEW.aggregate_type
     AND aggregate_id = NEW.aggregate_id
     AND sequence = NEW.sequence;
END;

-- System-wide help-desk ticket numbers. SQLite has no sequences; AUTOINCREMENT never
-- reuses a number, even after the highest row is deleted, which a plain rowid would.
CREATE TABLE help_desk_tickets
(
  serial    INTEGER PRIMARY KEY AUTOINCREMENT,
  issued_at TEXT NOT NULL
);
