-- On-screen notifications keyed by (person, position) instead of (position, person), and
-- the index notifications_person, which held the same two columns in that order, dropped.
-- Every read and write of the table names the person first (their list, newest first;
-- marking one read), and the key's uniqueness is the same either way, so each
-- notification now enters one index instead of two (docs/performance.md, the WAL of (a)).
ALTER TABLE notifications
    DROP CONSTRAINT notifications_pkey,
    ADD PRIMARY KEY (person_id, position);

DROP INDEX notifications_person;
