-- Secrets every server on this database shares. Each is made by the first server that
-- finds it missing (`Database::connect`), from SQLite's randomness (randomblob: its CSPRNG, seeded by the operating system).
-- `idempotency fingerprints` keys the HMAC over each request kept for retries in
-- idempotency_keys: the requests may hold SSNs, and an unkeyed hash of a 9-digit
-- number is undone by trying them all. Only the servers read it; back it up with the
-- database, as losing it only makes retries of the last 24 h count as new requests.
CREATE TABLE server_secrets
(
    name   text PRIMARY KEY,
    secret text NOT NULL
);
-- Keys kept from before (24 h at most) hold unkeyed fingerprints: a retry of one is
-- refused as a different request, never run a second time.
