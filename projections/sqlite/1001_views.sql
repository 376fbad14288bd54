-- The views (read models) fed by the projector in crates/projections from the global
-- event log; docs/projections.md describes them. Every view's rows are rebuildable from
-- the events at any time (`access-server rebuild`), so nothing here is a source of truth.
--
-- Times are TEXT in one fixed-width RFC 3339 form (`2024-05-01T10:00:00.123456789Z`):
-- nanoseconds exactly as the events carry them, and text order is time order, which the
-- queue, the audit filters and the cursors rely on.

-- How far each view has applied the log: updated in the same transaction as the view's
-- rows, so a view is never updated twice nor skipped, whatever crashes.
CREATE TABLE projection_checkpoints
(
  view     TEXT PRIMARY KEY,
  position INTEGER NOT NULL CHECK (position >= 0)
) STRICT;

-- View "access": who holds which role where, and every role request.

CREATE TABLE view_grants
(
  organization_id TEXT NOT NULL,
  person_id       TEXT NOT NULL,
  role            TEXT NOT NULL,
  granted_at      TEXT NOT NULL,
  PRIMARY KEY (organization_id, person_id)
) STRICT;

-- Manage Access and the pending queue start from one person's grants.
CREATE INDEX view_grants_person ON view_grants (person_id, role);

CREATE TABLE view_role_requests
(
  -- `<organization id>/<uuid>`, the id the API hands out.
  id              TEXT PRIMARY KEY,
  organization_id TEXT    NOT NULL,
  person_id       TEXT    NOT NULL,
  role            TEXT    NOT NULL,
  state           TEXT    NOT NULL,
  submitted_at    TEXT    NOT NULL,
  decided_at      TEXT,
  decided_by      TEXT,
  reason          TEXT,
  -- Failed proofs since the request opened or was last unblocked.
  failed_attempts INTEGER NOT NULL,
  -- The latest help-desk ticket of the request, kept once resolved.
  ticket          TEXT
) STRICT;

-- The pending queue (oldest first, keyset cursor) and the pending-user counts.
CREATE INDEX view_role_requests_queue ON view_role_requests (organization_id, state, submitted_at, id);
-- A person's own open requests.
CREATE INDEX view_role_requests_person ON view_role_requests (person_id, state);

-- View "support": help-desk tickets and the masked failed proofs behind them.

CREATE TABLE view_tickets
(
  number          TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL,
  request_id      TEXT NOT NULL,
  person_id       TEXT NOT NULL,
  opened_at       TEXT NOT NULL,
  state           TEXT NOT NULL
) STRICT;

-- Blocked accounts are the open tickets, oldest first.
CREATE INDEX view_tickets_state ON view_tickets (state, opened_at);

CREATE TABLE view_failed_proofs
(
  -- The position of the ProofRejected event: unique, and the attempts' order.
  position        INTEGER PRIMARY KEY,
  organization_id TEXT    NOT NULL,
  request_id      TEXT    NOT NULL,
  person_id       TEXT    NOT NULL,
  attempt         INTEGER NOT NULL,
  at              TEXT    NOT NULL,
  -- Masked values only (`tin *****6789`), as the event carries them.
  masked_proof    TEXT    NOT NULL,
  mismatch        TEXT    NOT NULL,
  -- The ticket these attempts led to; NULL while the person may still try.
  ticket          TEXT
) STRICT;

CREATE INDEX view_failed_proofs_request ON view_failed_proofs (request_id, ticket);
CREATE INDEX view_failed_proofs_ticket ON view_failed_proofs (ticket);

-- View "audit": every event, one row each, for the auditors' filters.

CREATE TABLE view_audit_log
(
  position        INTEGER PRIMARY KEY,
  organization_id TEXT    NOT NULL,
  sequence        INTEGER NOT NULL,
  event_type      TEXT    NOT NULL,
  event_version   TEXT    NOT NULL,
  occurred_at     TEXT    NOT NULL,
  -- Who acted; NULL for an automatic grant.
  actor_id        TEXT,
  -- Whom the event is about, when the event names the person.
  subject_id      TEXT,
  -- The stored payload as JSON text: person ids and masked proofs only.
  payload         TEXT    NOT NULL
) STRICT;

-- One index per filter of AuditFilter, each ending in the position the pages follow.
CREATE INDEX view_audit_log_organization ON view_audit_log (organization_id, position);
CREATE INDEX view_audit_log_actor ON view_audit_log (actor_id, position);
CREATE INDEX view_audit_log_subject ON view_audit_log (subject_id, position);
CREATE INDEX view_audit_log_type ON view_audit_log (event_type, position);
CREATE INDEX view_audit_log_time ON view_audit_log (occurred_at, position);
