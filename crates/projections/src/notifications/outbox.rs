//! The email outbox: rows queued by the projector, delivered by a sender that claims
//! each row before sending it and records the outcome after.
//!
//! A claim lasts a while (the sender's choice, longer than an SMTP exchange may take):
//! a sender that dies mid-send leaves its row claimed, and once the claim lapses any
//! sender takes the row over and sends it again. That is the one way an email can go out
//! twice: the SMTP server accepted it and the sender died (or lost the connection) before
//! recording it. Everything else is sent once, and nothing is lost.

use std::collections::HashMap;

use access_domain::identifiers::{OrganizationId, PersonId};
use access_store::Database;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{templates::Message, OUTBOX};
use crate::error::Error;
use crate::sql::{
    code, fetch, from_code, params, parse_id, parse_time, Cells, LoneWrites, Param, Tx,
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
/// (see `sql::LoneWrites`), so a sender stalled mid-send holds no lock. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    database: Database,
    writes: LoneWrites,
}

/// The outbox row of one email, for [`queue`].
pub(super) fn queued(
    position: i64,
    recipient: &str,
    organization: &str,
    message: &Message,
    at: DateTime<Utc>,
) -> Vec<Param> {
    vec![
        position.into(),
        recipient.into(),
        organization.into(),
        message.kind.into(),
        message.subject.as_str().into(),
        message.body.as_str().into(),
        at.into(),
        code(&EmailState::Pending).into(),
        0_i64.into(),
        at.into(),
    ]
}

/// Queues the emails, due at once.
pub(super) async fn queue(tx: &mut Tx, emails: Vec<Vec<Param>>) -> Result<(), Error> {
    tx.execute_rows(emails, |values| {
        format!(
            "INSERT INTO {OUTBOX} (position, recipient_id, organization_id, kind, subject, body, \
             at, state, attempts, next_attempt_at) {values} \
             ON CONFLICT (position, recipient_id) DO NOTHING"
        )
    })
    .await
}

impl Outbox {
    /// Call inside a Tokio runtime.
    pub fn new(database: Database) -> Self {
        Outbox {
            writes: LoneWrites::new(database.clone()),
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
