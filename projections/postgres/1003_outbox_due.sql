-- The sender's queue, oldest event first, over the emails still to send only. The
-- outbox keeps every email it ever queued (SENT, DEAD and UNDELIVERABLE rows are the
-- record support reads), so without this the sender's ordered scan walked the primary
-- key through every email already sent: 556 ms a batch once 175,000 had been, in a
-- soak, and growing (docs/reliability.md, "Soak", run 8).
CREATE INDEX notification_outbox_due ON notification_outbox (position, recipient_id)
    WHERE state IN ('PENDING', 'SENDING');
