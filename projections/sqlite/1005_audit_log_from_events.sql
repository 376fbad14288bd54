-- The auditors read the event log itself: view "audit" (view_audit_log) is dropped, and
-- the events table gets the columns and indexes AuditFilter needs. The same columns as
-- projections/postgres/1005_audit_log_from_events.sql, which says what each holds and
-- why. SQLite adds computed columns only as virtual ones (computed when read, and
-- stored in their indexes), and has no block range index: the time's index is an
-- ordinary one.
ALTER TABLE events ADD COLUMN person_id text
    GENERATED ALWAYS AS (payload -> event_type ->> 'person') VIRTUAL;
ALTER TABLE events ADD COLUMN acted_for text
    GENERATED ALWAYS AS (COALESCE(payload -> event_type ->> 'approver',
                                  payload -> event_type ->> 'by')) VIRTUAL;
ALTER TABLE events ADD COLUMN occurred_at text
    GENERATED ALWAYS AS (substr(payload -> event_type ->> 'at', 1, 19) || '.'
        || substr(rtrim(substr(payload -> event_type ->> 'at', 21), 'Z') || '000000000', 1, 9)
        || 'Z') VIRTUAL;

CREATE INDEX events_person ON events (person_id, position);
CREATE INDEX events_acted_for ON events (acted_for, position) WHERE acted_for IS NOT NULL;
CREATE INDEX events_type ON events (event_type, position);
CREATE INDEX events_occurred_at ON events (occurred_at, position);

DROP TABLE view_audit_log;
DROP TABLE IF EXISTS view_audit_log_rebuild;
DELETE FROM projection_checkpoints WHERE view = 'audit';
