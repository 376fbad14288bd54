-- On-screen notifications keyed by (person, position), the index notifications_person
-- dropped: projections/postgres/1006_notifications_keyed_by_person.sql says why. SQLite
-- cannot change a table's key in place, so the table is copied.
CREATE TABLE notifications_keyed_by_person
(
  position        INTEGER NOT NULL,
  person_id       TEXT    NOT NULL,
  organization_id TEXT    NOT NULL,
  kind            TEXT    NOT NULL,
  message         TEXT    NOT NULL,
  at              TEXT    NOT NULL,
  -- NULL while unread.
  read_at         TEXT,
  PRIMARY KEY (person_id, position)
) STRICT;

INSERT INTO notifications_keyed_by_person
       (position, person_id, organization_id, kind, message, at, read_at)
SELECT position, person_id, organization_id, kind, message, at, read_at FROM notifications;

DROP TABLE notifications;

ALTER TABLE notifications_keyed_by_person RENAME TO notifications;
