-- View "notifications": what each person is told on screen, and the outbox of the emails
-- telling them the same, both fed by the projector (crates/projections) in the same
-- transaction as the view's checkpoint; and the people directory the emails are
-- addressed from. docs/notifications.md describes them.
--
-- The same tables as projections/sqlite/1002_notifications.sql, column for column; compared
-- and sorted text columns use the "C" collation, as in 1001.
--
-- Unlike the views of 1001, this view is never rebuilt from the events: its rows also
-- record what people have read and which emails went out, which no event holds, and a
-- replay would mail everyone again.

-- Who is Security Official of which organization, as of the last event this view
-- applied: "every Security Official of the organization at that moment" is read here,
-- never from the access view, whose checkpoint may be elsewhere.
CREATE TABLE notification_security_officials
(
    organization_id text COLLATE "C" NOT NULL,
    person_id       text COLLATE "C" NOT NULL,
    PRIMARY KEY (organization_id, person_id)
);

-- On screen: one row per event and person told. The position is the notification's id
-- as its person sees it.
CREATE TABLE notifications
(
    position        bigint           NOT NULL,
    person_id       text COLLATE "C" NOT NULL,
    organization_id text COLLATE "C" NOT NULL,
    kind            text             NOT NULL,
    message         text             NOT NULL,
    at              text COLLATE "C" NOT NULL,
    -- NULL while unread.
    read_at         text COLLATE "C",
    PRIMARY KEY (position, person_id)
);

-- A person's notifications, newest first, unread ones alone.
CREATE INDEX notifications_person ON notifications (person_id, position);

-- By email: one row per event and recipient, so that re-applying an event can never queue
-- a second email for it.
CREATE TABLE notification_outbox
(
    position        bigint           NOT NULL,
    recipient_id    text COLLATE "C" NOT NULL,
    organization_id text COLLATE "C" NOT NULL,
    kind            text             NOT NULL,
    subject         text             NOT NULL,
    body            text             NOT NULL,
    -- The event's time.
    at              text COLLATE "C" NOT NULL,
    -- PENDING, SENDING (claimed by a sender), SENT, DEAD (given up after retries or
    -- refused for good by the SMTP server), UNDELIVERABLE (no usable address).
    state           text COLLATE "C" NOT NULL,
    -- SMTP attempts made, successful or not.
    attempts        bigint           NOT NULL,
    -- PENDING: the earliest time to try; SENDING: when the claim lapses and another sender
    -- may take the row over (its sender died mid-send).
    next_attempt_at text COLLATE "C" NOT NULL,
    last_attempt_at text COLLATE "C",
    -- Why the last attempt failed, or why the email was given up; never a message body.
    last_error      text,
    -- `smtp`, or `log` when no SMTP server is configured.
    sent_via        text,
    PRIMARY KEY (position, recipient_id)
);

-- The sender's due rows and support's dead letters.
CREATE INDEX notification_outbox_state ON notification_outbox (state, next_attempt_at);

-- Not a view: the name and address the identity provider last gave for each person, as
-- the API saw them in a token. Events name person ids only; the sender reads the address
-- here at send time. A row can be deleted at any time (erasure): that person's emails
-- then become undeliverable, and nothing else changes.
CREATE TABLE people
(
    person_id    text COLLATE "C" PRIMARY KEY,
    display_name text,
    email        text,
    updated_at   text COLLATE "C" NOT NULL
);

-- On a database that already holds events, start this view where the access view stands,
-- with the Security Officials that view shows: the history before it is not notified
-- again (nobody is mailed about last year), and new pending requests reach the right
-- people at once. On a new database both statements find nothing.
INSERT INTO projection_checkpoints (view, position)
SELECT 'notifications', position FROM projection_checkpoints WHERE view = 'access';

INSERT INTO notification_security_officials (organization_id, person_id)
SELECT organization_id, person_id FROM view_grants WHERE role = 'SECURITY_OFFICIAL';
