-- An aggregate's state as of one of its events, so that loading it (after the cache
-- evicted it, or in another server process) reads this row and the events after it
-- instead of its whole history. A cache, not a record: the events stay the truth, and
-- deleting every row here only makes the next loads slower. Written by the servers
-- after a load replays many events (docs/adr/08-snapshots.md).
--
-- `snapshots` (0001) keeps sqlite-es's own shape for its snapshot path, which the
-- product does not use: its rows carry no version of the state's layout.
CREATE TABLE aggregate_snapshots
(
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    -- The layout of `state`; a row of another version is ignored and replaced.
    state_version  integer NOT NULL,
    -- The sequence of the last event folded into `state`.
    sequence       integer NOT NULL CHECK (sequence > 0),
    -- The aggregate as JSON text, exactly as serde wrote it.
    state          text    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
) STRICT;
