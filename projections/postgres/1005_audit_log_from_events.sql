-- The auditors read the event log itself: view "audit" (view_audit_log, a copy of every
-- event with an index per filter of AuditFilter) is dropped, and the events table gets
-- what those filters need. docs/adr/17-audit-log-from-the-event-log.md says why: the
-- copy was a seventh of PostgreSQL's WAL in workload (a) of docs/performance.md, and it
-- held nothing the log does not.
--
-- Three columns computed by PostgreSQL from each event's payload, so that every writer of
-- the log, raw SQL included, fills them alike. Every payload is `{"<event type>": {...}}`
-- with the fields `person` (whom the event is about) and `at`, and, when someone other
-- than that person acted, `approver` or `by` (docs/events.md). Adding them rewrites the
-- table once: about 14 s a million events on the machine of docs/performance.md, during
-- which appends wait.
ALTER TABLE events
    -- Whom the event is about.
    ADD COLUMN person_id text COLLATE "C"
        GENERATED ALWAYS AS (payload -> event_type ->> 'person') STORED,
    -- Who acted, when not the person the event is about: a decision, a grant made by a
    -- Security Official, a revocation, support's actions. NULL when that person acted
    -- (a request, a proof, a withdrawal) or nobody did (an automatic grant).
    ADD COLUMN acted_for text COLLATE "C"
        GENERATED ALWAYS AS (COALESCE(payload -> event_type ->> 'approver',
                                      payload -> event_type ->> 'by')) STORED,
    -- When, as the fixed-width text the views use (nanoseconds, `Z`), from the RFC 3339
    -- text of the payload, which has 0, 3, 6 or 9 fractional digits.
    ADD COLUMN occurred_at text COLLATE "C"
        GENERATED ALWAYS AS (substr(payload -> event_type ->> 'at', 1, 19) || '.'
            || substr(rtrim(substr(payload -> event_type ->> 'at', 21), 'Z') || '000000000', 1, 9)
            || 'Z') STORED;

-- "Events about or by the person": the events they did about themselves are found by the
-- first, so the second holds only the events someone did to someone else.
CREATE INDEX events_person ON events (person_id, position);
CREATE INDEX events_acted_for ON events (acted_for, position) WHERE acted_for IS NOT NULL;

CREATE INDEX events_type ON events (event_type, position);

-- Events are appended in time order, give or take a command's duration, so a block range
-- index finds a period's rows, and costs an append next to nothing.
CREATE INDEX events_occurred_at ON events USING brin (occurred_at);

-- The organization filter needs no index of its own: within one organization sequence
-- order is log order, so it reads the primary key.

DROP TABLE view_audit_log;
DROP TABLE IF EXISTS view_audit_log_rebuild;
DELETE FROM projection_checkpoints WHERE view = 'audit';
