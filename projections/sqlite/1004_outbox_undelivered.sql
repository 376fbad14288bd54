-- Support's dead letters, and nothing else: the emails given up or never deliverable.
-- The index it replaces held every email, keyed by state, so each email's three writes
-- (queued, claimed, recorded) each added an entry to it: under workload (a) of
-- docs/performance.md the outbox was a third of PostgreSQL's WAL records, and this index
-- a third of those. The sender's reads go through notification_outbox_due (1003), and a
-- sent email now enters no index but the primary key.
DROP INDEX notification_outbox_state;

CREATE INDEX notification_outbox_undelivered ON notification_outbox (position, recipient_id)
    WHERE state IN ('DEAD', 'UNDELIVERABLE');
