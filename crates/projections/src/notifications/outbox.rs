//! The email outbox: rows queued by the projector, delivered by a sender that claims
//! each row before sending it and records the outcome after.
//!
//! A claim lasts a while (the sender's choice, longer than an SMTP exchange may take):
//! a sender that dies mid-send leaves its row claimed, and once the claim lapses any
//! sender takes the row over and sends it again. That is the one way an email can go out
//! twice: the SMTP server accepted it and the sender died (or lost the connection) before
//! recording it. Everything else is sent once, and nothing is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use access_domain::identifiers::{OrganizationId, PersonId};
use access_store::Database;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{templates::Message, OUTBOX};
use crate::error::Error;
use crate::sql::{
    code, fetch, from_code, params, parse_id, parse_time, Acknowledged, Cells, LoneWrites, Param,
    Tx,
};

/// The condition of the partial index `notification_outbox_due` (migration 1003), word
/// for word: written as literals, not parameters, so that every plan of the sender's
/// queries can use that index instead of walking every email ever sent.
const STILL_TO_SEND: &str = "o.state IN ('PENDING', 'SENDING')";

/// The condition of the partial index `notification_outbox_undelivered` (migration 1004),
/// word for word, for the same reason.
const UNDELIVERED: &str = "state IN ('DEAD', 'UNDELIVERABLE')";

/// Where an email stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailState {
    /// Waiting for its first try, or for its next one after a failure.
    Pending,
    /// Claimed by a sender, which is sending it now (or died doing so).
    Sending,
    Sent,
    /// Given up: every try failed, or the SMTP server refused it for good.
    Dead,
    /// No usable address for the recipient; never tried.
    Undeliverable,
}

/// An email due for a try, with the recipient's address as the people directory has it
/// now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEmail {
    /// The event's position: with the recipient, the email's identity.
    pub position: i64,
    pub recipient: PersonId,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// What came of a claimed email.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// `via`: `smtp`, or `log` when no SMTP server is configured.
    Sent {
        via: &'static str,
    },
    /// Failed; try again from `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Dead {
        error: String,
    },
    Undeliverable {
        reason: String,
    },
}

/// An email support should know about: given up, or never deliverable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndeliveredEmail {
    pub position: i64,
    pub recipient: PersonId,
    pub organization: OrganizationId,
    pub kind: String,
    pub subject: String,
    pub state: EmailState,
    pub attempts: i64,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The outbox, as the sender and support use it: each change is one statement of its own
/// (see `sql::LoneWrites`), so a sender stalled mid-send holds no lock, and on PostgreSQL
/// its commit does not wait for its flush: each sender's batch then cost a flush of its
/// own, which the appends' next commit waited behind (docs/adr/18-sender-records-unflushed.md).
/// Should PostgreSQL crash before the flush, the emails whose claim or outcome it held are
/// tried once more; none is lost, as the views' transactions queue them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    database: Database,
    writes: LoneWrites,
}

/// Handed emails waiting for the sender, past which emails are queued unclaimed instead:
/// a sender far behind (its SMTP server slow or gone) takes them from the outbox in turn,
/// and the process's memory stays bounded.
const MOST_HANDED: usize = 10_000;

/// One email a batch of events tells, until it is queued.
pub(super) struct QueuedEmail {
    email: PendingEmail,
    organization: String,
    /// The event's time.
    at: DateTime<Utc>,
}

impl QueuedEmail {
    pub(super) fn new(
        position: i64,
        recipient: &str,
        organization: &str,
        message: &Message,
        at: DateTime<Utc>,
    ) -> Result<QueuedEmail, Error> {
        Ok(QueuedEmail {
            email: PendingEmail {
                position,
                recipient: parse_id(recipient, OUTBOX, "recipient_id")?,
                kind: message.kind.to_owned(),
                subject: message.subject.clone(),
                body: message.body.clone(),
                display_name: None,
                email: None,
            },
            organization: organization.to_owned(),
            at,
        })
    }

    /// The outbox row: `state` until `next_attempt_at`.
    fn row(&self, state: EmailState, next_attempt_at: DateTime<Utc>) -> Vec<Param> {
        let email = &self.email;
        vec![
            email.position.into(),
            email.recipient.as_str().into(),
            self.organization.as_str().into(),
            email.kind.as_str().into(),
            email.subject.as_str().into(),
            email.body.as_str().into(),
            self.at.into(),
            code(&state).into(),
            0_i64.into(),
            next_attempt_at.into(),
        ]
    }
}

/// Queues the emails. With a `handoff` that takes them, each is queued already claimed by
/// this process's sender (`SENDING`, for as long as a claim lasts) and handed to it once
/// the transaction has committed, so the sender neither reads nor claims it from the
/// table; otherwise each is queued due at once, for any sender to claim.
pub(super) async fn queue(
    tx: &mut Tx<'_>,
    emails: Vec<QueuedEmail>,
    handoff: Option<&EmailHandoff>,
) -> Result<(), Error> {
    if emails.is_empty() {
        return Ok(());
    }
    let handoff = handoff.filter(|handoff| handoff.takes_more());
    let rows = match handoff {
        Some(handoff) => {
            let until = Utc::now() + handoff.claim;
            let rows = emails
                .iter()
                .map(|email| email.row(EmailState::Sending, until))
                .collect();
            let handed = HandedEmails {
                emails: emails.into_iter().map(|queued| queued.email).collect(),
                until,
            };
            let handoff = handoff.clone();
            tx.after_commit(move || handoff.hand(handed));
            rows
        }
        None => emails
            .iter()
            .map(|email| email.row(EmailState::Pending, email.at))
            .collect(),
    };
    // The key makes a second copy of an email impossible, should an event ever be applied
    // twice; the checkpoint, locked in this transaction, is what keeps that from happening,
    // so a handed email is always one this statement inserted.
    tx.execute_rows(rows, |values| {
        format!(
            "INSERT INTO {OUTBOX} (position, recipient_id, organization_id, kind, subject, body, \
             at, state, attempts, next_attempt_at) {values} \
             ON CONFLICT (position, recipient_id) DO NOTHING"
        )
    })
    .await
}

/// Emails one committed transaction queued claimed until `until` for this process's
/// sender. Their addresses are not read yet: the sender reads them at send time.
#[derive(Debug)]
pub struct HandedEmails {
    pub emails: Vec<PendingEmail>,
    pub until: DateTime<Utc>,
}

/// The projector's end of the way emails go straight to this process's sender, queued
/// already claimed (docs/notifications.md, "Handed emails"). Cheap to clone.
#[derive(Clone, Debug)]
pub struct EmailHandoff {
    claim: chrono::Duration,
    to_sender: mpsc::UnboundedSender<HandedEmails>,
    waiting: Arc<AtomicUsize>,
}

/// The sender's end.
#[derive(Debug)]
pub struct EmailsHanded {
    from_projector: mpsc::UnboundedReceiver<HandedEmails>,
    waiting: Arc<AtomicUsize>,
}

impl EmailHandoff {
    /// `claim`: how long a handed email stays the sender's, as long as a claim of its own
    /// lasts. Once it lapses (the process died with the email in hand) any sender takes
    /// the email from the outbox.
    pub fn new(claim: std::time::Duration) -> (EmailHandoff, EmailsHanded) {
        let (to_sender, from_projector) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let claim = chrono::Duration::from_std(claim).unwrap_or(chrono::Duration::MAX);
        (
            EmailHandoff {
                claim,
                to_sender,
                waiting: waiting.clone(),
            },
            EmailsHanded {
                from_projector,
                waiting,
            },
        )
    }

    /// Whether a sender is there to take more emails, and not too far behind.
    fn takes_more(&self) -> bool {
        !self.to_sender.is_closed() && self.waiting.load(Ordering::SeqCst) < MOST_HANDED
    }

    fn hand(&self, handed: HandedEmails) {
        let count = handed.emails.len();
        self.waiting.fetch_add(count, Ordering::SeqCst);
        if self.to_sender.send(handed).is_err() {
            // The sender stopped after the emails were queued: they are sent by whichever
            // sender finds them once their claim lapses.
            self.waiting.fetch_sub(count, Ordering::SeqCst);
        }
    }
}

impl EmailsHanded {
    /// The next emails handed over; `None` once the projector has stopped.
    pub async fn recv(&mut self) -> Option<HandedEmails> {
        let handed = self.from_projector.recv().await?;
        Some(self.taken(handed))
    }

    /// Emails handed over and not taken yet, without waiting.
    pub fn try_recv(&mut self) -> Option<HandedEmails> {
        let handed = self.from_projector.try_recv().ok()?;
        Some(self.taken(handed))
    }

    /// `handed`, no longer counted as waiting.
    fn taken(&self, handed: HandedEmails) -> HandedEmails {
        self.waiting
            .fetch_sub(handed.emails.len(), Ordering::SeqCst);
        handed
    }
}

impl Outbox {
    /// Call inside a Tokio runtime.
    pub fn new(database: Database) -> Self {
        Outbox {
            writes: LoneWrites::new(database.clone(), Acknowledged::BeforeFlush),
            database,
        }
    }

    /// Up to `limit` emails due at `now`, oldest event first: pending ones whose time has
    /// come, and claimed ones whose claim lapsed.
    pub async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<PendingEmail>, Error> {
        fetch(
            &self.database,
            &format!(
                "SELECT o.position, o.recipient_id, o.kind, o.subject, o.body, \
                        p.display_name, p.email \
                   FROM {OUTBOX} o LEFT JOIN people p ON p.person_id = o.recipient_id \
                  WHERE {STILL_TO_SEND} AND o.next_attempt_at <= $1 \
                  ORDER BY o.position, o.recipient_id LIMIT $2"
            ),
            params![now, limit],
            |row| {
                Ok(PendingEmail {
                    position: row.int(0)?,
                    recipient: parse_id(&row.text(1)?, OUTBOX, "recipient_id")?,
                    kind: row.text(2)?,
                    subject: row.text(3)?,
                    body: row.text(4)?,
                    display_name: row.opt_text(5)?,
                    email: row.opt_text(6)?,
                })
            },
        )
        .await
    }

    /// The names and addresses the people directory has now for `emails`' recipients,
    /// filled in.
    pub async fn address(&self, mut emails: Vec<PendingEmail>) -> Result<Vec<PendingEmail>, Error> {
        let mut recipients: Vec<&str> = emails
            .iter()
            .map(|email| email.recipient.as_str())
            .collect();
        recipients.sort_unstable();
        recipients.dedup();
        let keys = recipients
            .into_iter()
            .map(|recipient| vec![Param::from(recipient)])
            .collect();
        let found: HashMap<String, (Option<String>, Option<String>)> = self
            .writes
            .fetch_keyed(
                keys,
                |recipients| {
                    format!(
                        "SELECT person_id, display_name, email FROM people \
                          WHERE person_id IN ({recipients})"
                    )
                },
                |row| Ok((row.text(0)?, (row.opt_text(1)?, row.opt_text(2)?))),
            )
            .await?
            .into_iter()
            .collect();
        for email in &mut emails {
            if let Some((display_name, address)) = found.get(email.recipient.as_str()) {
                email.display_name = display_name.clone();
                email.email = address.clone();
            }
        }
        Ok(emails)
    }

    /// When the next email falls due (a retry, or a lapsing claim); `None` when nothing
    /// waits.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error> {
        let next = fetch(
            &self.database,
            &format!("SELECT MIN(o.next_attempt_at) FROM {OUTBOX} o WHERE {STILL_TO_SEND}"),
            params![],
            |row| row.opt_text(0),
        )
        .await?;
        next.into_iter()
            .flatten()
            .next()
            .map(|at| parse_time(&at, OUTBOX, "next_attempt_at"))
            .transpose()
    }

    /// Takes each of `emails` for this sender until `until`, provided it is still due at
    /// `now` (no other sender took it meanwhile), in one statement for the batch. Answers,
    /// in order, the attempts made so far, or `None` for an email that is not this
    /// sender's to send.
    pub async fn claim(
        &self,
        emails: &[PendingEmail],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Option<i64>>, Error> {
        let rows = keyed_rows(
            emails,
            &[
                code(&EmailState::Sending).into(),
                until.into(),
                code(&EmailState::Pending).into(),
                now.into(),
            ],
        );
        let claimed: HashMap<(i64, String), i64> = self
            .writes
            .fetch_rows(
                rows,
                |rows| {
                    format!(
                        "WITH claim (claimed_position, claimed_recipient, sending, until, pending, \
                                     due_by) AS ({rows}) \
                         UPDATE {OUTBOX} SET state = claim.sending, next_attempt_at = claim.until \
                           FROM claim \
                          WHERE {OUTBOX}.position = claim.claimed_position \
                            AND {OUTBOX}.recipient_id = claim.claimed_recipient \
                            AND {OUTBOX}.state IN (claim.pending, claim.sending) \
                            AND {OUTBOX}.next_attempt_at <= claim.due_by \
                         RETURNING {OUTBOX}.position, {OUTBOX}.recipient_id, {OUTBOX}.attempts"
                    )
                },
                |row| Ok(((row.int(0)?, row.text(1)?), row.int(2)?)),
            )
            .await?
            .into_iter()
            .collect();
        Ok(emails
            .iter()
            .map(|email| {
                claimed
                    .get(&(email.position, email.recipient.to_string()))
                    .copied()
            })
            .collect())
    }

    /// Records what came of claimed emails, each at the time it was tried, in one
    /// statement for the batch.
    pub async fn record(
        &self,
        outcomes: &[(&PendingEmail, DateTime<Utc>, Outcome)],
    ) -> Result<(), Error> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let sending = code(&EmailState::Sending);
        let rows = outcomes
            .iter()
            .map(|(email, tried_at, outcome)| {
                let now = *tried_at;
                let (state, tried, next, error, via) = match outcome {
                    Outcome::Sent { via } => (EmailState::Sent, 1_i64, now, None, Some(*via)),
                    Outcome::Retry { at, error } => {
                        (EmailState::Pending, 1, *at, Some(error.as_str()), None)
                    }
                    Outcome::Dead { error } => {
                        (EmailState::Dead, 1, now, Some(error.as_str()), None)
                    }
                    Outcome::Undeliverable { reason } => (
                        EmailState::Undeliverable,
                        0,
                        now,
                        Some(reason.as_str()),
                        None,
                    ),
                };
                vec![
                    email.position.into(),
                    email.recipient.as_str().into(),
                    code(&state).into(),
                    tried.into(),
                    next.into(),
                    now.into(),
                    error.into(),
                    via.into(),
                    sending.as_str().into(),
                ]
            })
            .collect();
        self.writes
            .execute_rows(rows, |rows| {
                format!(
                    "WITH outcome (sent_position, sent_recipient, new_state, tried, next_at, tried_at, \
                                   error, via, sending) AS ({rows}) \
                     UPDATE {OUTBOX} SET state = outcome.new_state, \
                            attempts = attempts + outcome.tried, \
                            next_attempt_at = outcome.next_at, last_attempt_at = outcome.tried_at, \
                            last_error = outcome.error, sent_via = outcome.via \
                       FROM outcome \
                      WHERE {OUTBOX}.position = outcome.sent_position \
                        AND {OUTBOX}.recipient_id = outcome.sent_recipient \
                        AND {OUTBOX}.state = outcome.sending"
                )
            })
            .await
    }

    /// Gives claimed emails that were not tried back to any sender, due at `now`, in one
    /// statement: a sender hands back what its claim no longer leaves time to send, and
    /// what it holds when it stops.
    pub async fn hand_back(
        &self,
        emails: &[&PendingEmail],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if emails.is_empty() {
            return Ok(());
        }
        let rows = keyed_rows(
            emails.iter().copied(),
            &[
                code(&EmailState::Sending).into(),
                code(&EmailState::Pending).into(),
                now.into(),
            ],
        );
        self.writes
            .execute_rows(rows, |rows| {
                format!(
                    "WITH handed_back (returned_position, returned_recipient, sending, pending, \
                                       due_at) AS ({rows}) \
                     UPDATE {OUTBOX} SET state = handed_back.pending, \
                            next_attempt_at = handed_back.due_at \
                       FROM handed_back \
                      WHERE {OUTBOX}.position = handed_back.returned_position \
                        AND {OUTBOX}.recipient_id = handed_back.returned_recipient \
                        AND {OUTBOX}.state = handed_back.sending"
                )
            })
            .await
    }

    /// The emails given up or never deliverable, oldest first: for support.
    pub async fn undelivered(&self) -> Result<Vec<UndeliveredEmail>, Error> {
        fetch(
            &self.database,
            &format!(
                "SELECT position, recipient_id, organization_id, kind, subject, state, attempts, \
                        last_attempt_at, last_error \
                   FROM {OUTBOX} WHERE {UNDELIVERED} ORDER BY position, recipient_id"
            ),
            params![],
            undelivered,
        )
        .await
    }
}

/// A row per email: its key (position, recipient), then `values`.
fn keyed_rows<'a>(
    emails: impl IntoIterator<Item = &'a PendingEmail>,
    values: &[Param],
) -> Vec<Vec<Param>> {
    emails
        .into_iter()
        .map(|email| {
            let mut row = vec![email.position.into(), email.recipient.as_str().into()];
            row.extend_from_slice(values);
            row
        })
        .collect()
}

fn undelivered(row: &dyn Cells) -> Result<UndeliveredEmail, Error> {
    Ok(UndeliveredEmail {
        position: row.int(0)?,
        recipient: parse_id(&row.text(1)?, OUTBOX, "recipient_id")?,
        organization: parse_id(&row.text(2)?, OUTBOX, "organization_id")?,
        kind: row.text(3)?,
        subject: row.text(4)?,
        state: from_code(row.text(5)?, OUTBOX, "state")?,
        attempts: row.int(6)?,
        last_attempt_at: row
            .opt_text(7)?
            .map(|at| parse_time(&at, OUTBOX, "last_attempt_at"))
            .transpose()?,
        last_error: row.opt_text(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_indexes_conditions_name_the_states_as_they_are_stored() {
        let listed = |first: EmailState, second: EmailState| {
            format!("state IN ('{}', '{}')", code(&first), code(&second))
        };
        assert_eq!(
            STILL_TO_SEND,
            format!("o.{}", listed(EmailState::Pending, EmailState::Sending))
        );
        assert_eq!(
            UNDELIVERED,
            listed(EmailState::Dead, EmailState::Undeliverable)
        );
    }
}
