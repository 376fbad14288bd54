-- The first answer to each request a client sent with an Idempotency-Key, so a
-- retry within 24 hours gets the same answer without running the command again.
-- Keyed by person: one client's keys never collide with another's.
CREATE TABLE idempotency_keys
(
    person_id       text   NOT NULL,
    idempotency_key text   NOT NULL,
    -- SHA-256 of the request (query, variables, operation name): a key reused
    -- for a different request is refused rather than answered wrongly.
    fingerprint     text   NOT NULL,
    -- NULL while the first request is being processed.
    response        text,
    created_at_ms   bigint NOT NULL,
    PRIMARY KEY (person_id, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_ms);
