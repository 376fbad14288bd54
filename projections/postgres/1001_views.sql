-- The views (read models) fed by the projector in crates/projections from the global
-- event log; docs/projections.md describes them. Every view's rows are rebuildable from
-- the events at any time (`access-server rebuild`), so nothing here is a source of truth.
--
-- The same tables as projections/sqlite/1001_views.sql, so that one SQL text serves both
-- databases. Times are text in one fixed-width RFC 3339 form
-- (`2024-05-01T10:00:00.123456789Z`): nanoseconds exactly as the events carry them
-- (timestamptz would round to microseconds), and text order is time order. Columns that
-- are compared or sorted use the "C" collation, so the order is byte order on every
-- server, as on SQLite, whatever the database's locale.

-- How far each view has applied the log: updated in the same transaction as the view's
-- rows, so a view is never updated twice nor skipped, whatever crashes. Writers lock the
-- view's row first (SELECT ... FOR UPDATE), which serializes two projectors and a rebuild.
CREATE TABLE projection_checkpoints
(
    view     text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0)
);

-- View "access": who holds which role where, and every role request.

CREATE TABLE view_grants
(
    organization_id text COLLATE "C" NOT NULL,
    person_id       text COLLATE "C" NOT NULL,
    role            text             NOT NULL,
    granted_at      text COLLATE "C" NOT NULL,
    PRIMARY KEY (organization_id, person_id)
);

-- Manage Access and the pending queue start from one person's grants.
CREATE INDEX view_grants_person ON view_grants (person_id, role);

CREATE TABLE view_role_requests
(
    -- `<organization id>/<uuid>`, the id the API hands out.
    id              text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    person_id       text COLLATE "C" NOT NULL,
    role            text             NOT NULL,
    state           text             NOT NULL,
    submitted_at    text COLLATE "C" NOT NULL,
    decided_at      text COLLATE "C",
    decided_by      text,
    reason          text,
    -- Failed proofs since the request opened or was last unblocked.
    failed_attempts bigint           NOT NULL,
    -- The latest help-desk ticket of the request, kept once resolved.
    ticket          text
);

-- The pending queue (oldest first, keyset cursor) and the pending-user counts.
CREATE INDEX view_role_requests_queue ON view_role_requests (organization_id, state, submitted_at, id);
-- A person's own open requests.
CREATE INDEX view_role_requests_person ON view_role_requests (person_id, state);

-- View "support": help-desk tickets and the masked failed proofs behind them.

CREATE TABLE view_tickets
(
    number          text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    request_id      text COLLATE "C" NOT NULL,
    person_id       text COLLATE "C" NOT NULL,
    opened_at       text COLLATE "C" NOT NULL,
    state           text             NOT NULL
);

-- Blocked accounts are the open tickets, oldest first.
CREATE INDEX view_tickets_state ON view_tickets (state, opened_at);

CREATE TABLE view_failed_proofs
(
    -- The position of the ProofRejected event: unique, and the attempts' order.
    position        bigint PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    request_id      text COLLATE "C" NOT NULL,
    person_id       text COLLATE "C" NOT NULL,
    attempt         bigint           NOT NULL,
    at              text COLLATE "C" NOT NULL,
    -- Masked values only (`tin *****6789`), as the event carries them.
    masked_proof    text             NOT NULL,
    mismatch        text             NOT NULL,
    -- The ticket these attempts led to; NULL while the person may still try.
    ticket          text COLLATE "C"
);

CREATE INDEX view_failed_proofs_request ON view_failed_proofs (request_id, ticket);
CREATE INDEX view_failed_proofs_ticket ON view_failed_proofs (ticket);

-- View "audit": every event, one row each, for the auditors' filters.

CREATE TABLE view_audit_log
(
    position        bigint PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    sequence        bigint           NOT NULL,
    event_type      text COLLATE "C" NOT NULL,
    event_version   text             NOT NULL,
    occurred_at     text COLLATE "C" NOT NULL,
    -- Who acted; NULL for an automatic grant.
    actor_id        text COLLATE "C",
    -- Whom the event is about, when the event names the person.
    subject_id      text COLLATE "C",
    -- The stored payload as JSON text: person ids and masked proofs only.
    payload         text             NOT NULL
);

-- One index per filter of AuditFilter, each ending in the position the pages follow.
CREATE INDEX view_audit_log_organization ON view_audit_log (organization_id, position);
CREATE INDEX view_audit_log_actor ON view_audit_log (actor_id, position);
CREATE INDEX view_audit_log_subject ON view_audit_log (subject_id, position);
CREATE INDEX view_audit_log_type ON view_audit_log (event_type, position);
CREATE INDEX view_audit_log_time ON view_audit_log (occurred_at, position);
