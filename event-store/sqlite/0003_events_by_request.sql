-- Events appended by a request sent with an Idempotency-Key carry, in their metadata,
-- a hash of the person and the key (`request`). A retry that takes over a key whose
-- first request never answered (its server died, or the answer was not kept) looks
-- here to learn whether that request committed before running it again.
-- Partial: only such events are indexed, so appends without a key pay nothing more.
CREATE INDEX events_by_request ON events (json_extract(metadata, '$.request'))
    WHERE json_extract(metadata, '$.request') IS NOT NULL;
