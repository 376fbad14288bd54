-- View "notifications": what each person is told on screen, and the outbox of the emails
-- telling them the same, both fed by the projector (crates/projections) in the same
-- transaction as the view's checkpoint; and the people directory the emails are
-- addressed from. docs/notifications.md describes them.
--
-- Unlike the views of 1001, this view is never rebuilt from the events: its rows also
-- record what people have read and which emails went out, which no event holds, and a
-- replay would mail everyone again.

-- Who is Security Official of which organization, as of the last event this view
-- applied: "every Security Official of the organization at that moment" is read here,
-- never from the access view, whose checkpoint may be elsewhere.
CREATE TABLE notification_security_officials
(
  organization_id TEXT NOT NULL,
  person_id       TEXT NOT NULL,
  PRIMARY KEY (organization_id, person_id)
) STRICT;

-- On screen: one row per event and person told. The position is the notification's id
-- as its person sees it.
CREATE TABLE notifications
(
  position        INTEGER NOT NULL,
  person_id       TEXT    NOT NULL,
  organization_id TEXT    NOT NULL,
  kind            TEXT    NOT NULL,
  message         TEXT    NOT NULL,
  at              TEXT    NOT NULL,
  -- NULL while unread.
  read_at         TEXT,
  PRIMARY KEY (position, person_id)
) STRICT;

-- A person's notifications, newest first, unread ones alone.
CREATE INDEX notifications_person ON notifications (person_id, position);

-- By email: one row per event and recipient, so that re-applying an event can never queue
-- a second email for it.
CREATE TABLE notification_outbox
(
  position        INTEGER NOT NULL,
  recipient_id    TEXT    NOT NULL,
  organization_id TEXT    NOT NULL,
  kind            TEXT    NOT NULL,
  subject         TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  -- The event's time.
  at              TEXT    NOT NULL,
  -- PENDING, SENDING (claimed by a sender), SENT, DEAD (given up after retries or
  -- refused for good by the SMTP server), UNDELIVERABLE (no usable address).
  state           TEXT    NOT NULL,
  -- SMTP attempts made, successful or not.
  attempts        INTEGER NOT NULL,
  -- PENDING: the earliest time to try; SENDING: when the claim lapses and another sender
  -- may take the row over (its sender died mid-send).
  next_attempt_at TEXT    NOT NULL,
  last_attempt_at TEXT,
  -- Why the last attempt failed, or why the email was given up; never a message body.
  last_error      TEXT,
  -- `smtp`, or `log` when no SMTP server is configured.
  sent_via        TEXT,
  PRIMARY KEY (position, recipient_id)
) STRICT;

-- The sender's due rows and support's dead letters.
CREATE INDEX notification_outbox_state ON notification_outbox (state, next_attempt_at);

-- Not a view: the name and address the identity provider last gave for each person, as
-- the API saw them in a token. Events name person ids only; the sender reads the address
-- here at send time. A row can be deleted at any time (erasure): that person's emails
-- then become undeliverable, and nothing else changes.
CREATE TABLE people
(
  person_id    TEXT PRIMARY KEY,
  display_name TEXT,
  email        TEXT,
  updated_at   TEXT NOT NULL
) STRICT;

-- On a database that already holds events, start this view where the access view stands,
-- with the Security Officials that view shows: the history before it is not notified
-- again (nobody is mailed about last year), and new pending requests reach the right
-- people at once. On a new database both statements find nothing.
INSERT INTO projection_checkpoints (view, position)
SELECT 'notifications', position FROM projection_checkpoints WHERE view = 'access';

INSERT INTO notification_security_officials (organization_id, person_id)
SELECT organization_id, person_id FROM view_grants WHERE role = 'SECURITY_OFFICIAL';
