//! View "notifications": what each person is told of the changes that concern them
//! (domain rule 10), on screen (`notifications`) and by email (`notification_outbox`),
//! one row per event and person in each. Both are written in the transaction that moves
//! the view's checkpoint, so an event is told once, whatever crashes: the email then
//! waits in the outbox for the sender (crate `access-notifications`), which reads the
//! address from the people directory at send time.
//!
//! The view is never rebuilt: read marks and delivery states are not in the events.

mod outbox;
pub(crate) mod people;
mod templates;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use access_domain::events::DecisionPath;
use access_domain::identifiers::{mask_tail, OrganizationId, PersonId};
use access_domain::roles::Role;
use access_domain::OrganizationEvent;
use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::events::Envelope;
use crate::read::Views;
use crate::sql::{fetch, params, parse_id, parse_time, Param, Tx};
use templates::Notice;

pub use outbox::{
    EmailHandoff, EmailState, EmailsHanded, HandedEmails, Outbox, Outcome, PendingEmail,
    UndeliveredEmail,
};
pub(crate) use people::Recording;
pub use people::{ErasedContact, People, Recorded};

pub(crate) const SECURITY_OFFICIALS: &str = "notification_security_officials";
pub(crate) const NOTIFICATIONS: &str = "notifications";
pub(crate) const OUTBOX: &str = "notification_outbox";

/// Most notifications one read returns: the newest ones.
const MOST_NOTIFICATIONS: i64 = 200;

/// How messages name an organization. The server answers from its reference data; an
/// organization it does not know is named by its type and masked key.
pub trait OrganizationNames: Send + Sync + fmt::Debug {
    fn legal_name(&self, organization: &OrganizationId) -> Option<String>;
}

/// Something that happened to the person, as shown on screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The position of the event that caused it: with the person, the notification's
    /// identity (a person is told of an event once; several people may be told of one).
    pub position: i64,
    pub organization: OrganizationId,
    /// e.g. `REQUEST_APPROVED` (docs/notifications.md lists them).
    pub kind: String,
    pub message: String,
    pub at: DateTime<Utc>,
    pub read: bool,
}

/// Tells everyone concerned of a batch of events: one row per event and person in
/// `notifications` and in the outbox, written a few hundred rows per statement at the
/// end of the batch (one event can tell every Security Official of an organization).
/// `names` words the messages; the emails go to this process's sender through
/// `handoff`, when there is one.
pub(crate) async fn apply_batch(
    tx: &mut Tx<'_>,
    envelopes: &[Envelope],
    names: Option<&dyn OrganizationNames>,
    handoff: Option<&EmailHandoff>,
) -> Result<(), Error> {
    let mut batch = Told::read(tx, envelopes).await?;
    for envelope in envelopes {
        apply(envelope, names, &mut batch)?;
    }
    batch.write(tx, handoff).await
}

/// What a batch tells, kept until the batch's end; and the Security Officials of the
/// batch's organizations as of the event being applied: read in one statement at the
/// start, changed in memory, written back in one statement or two at the end.
#[derive(Default)]
struct Told {
    notifications: Vec<Vec<Param>>,
    emails: Vec<outbox::QueuedEmail>,
    security_officials: HashMap<String, BTreeSet<String>>,
    /// Whether each (organization, person) the batch touched is a Security Official
    /// after it.
    security_official_changes: BTreeMap<(String, String), bool>,
}

impl Told {
    /// Reads the Security Officials of every organization the events belong to.
    async fn read(tx: &mut Tx<'_>, envelopes: &[Envelope]) -> Result<Told, Error> {
        let organizations: BTreeSet<String> = envelopes
            .iter()
            .map(|envelope| envelope.organization.to_string())
            .collect();
        let mut security_officials: HashMap<String, BTreeSet<String>> = organizations
            .iter()
            .map(|organization| (organization.clone(), BTreeSet::new()))
            .collect();
        let found = tx
            .fetch_own_rows(
                organizations
                    .into_iter()
                    .map(|organization| vec![organization.into()])
                    .collect(),
                |organizations| {
                    format!(
                        "SELECT organization_id, person_id FROM {SECURITY_OFFICIALS} \
                          WHERE organization_id IN ({organizations})"
                    )
                },
                |row| Ok((row.text(0)?, row.text(1)?)),
            )
            .await?;
        for (organization, person) in found {
            security_officials
                .entry(organization)
                .or_default()
                .insert(person);
        }
        Ok(Told {
            security_officials,
            ..Told::default()
        })
    }

    /// The organization's Security Officials as of the events applied so far.
    fn security_officials(&self, organization: &str) -> Vec<String> {
        self.security_officials
            .get(organization)
            .map(|people| people.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn set_security_official(&mut self, organization: &str, person: &PersonId, is_one: bool) {
        let people = self
            .security_officials
            .entry(organization.to_string())
            .or_default();
        if is_one {
            people.insert(person.to_string());
        } else {
            people.remove(person.as_str());
        }
        self.security_official_changes
            .insert((organization.to_string(), person.to_string()), is_one);
    }

    /// The on-screen notification and the queued email. Their keys, (person, position)
    /// and (position, recipient), make a second copy of either impossible, should an
    /// event ever be applied again.
    fn tell(
        &mut self,
        envelope: &Envelope,
        person: &str,
        message: &templates::Message,
    ) -> Result<(), Error> {
        let organization = envelope.organization.to_string();
        let at = envelope.event.at();
        self.notifications.push(vec![
            envelope.position.into(),
            person.into(),
            organization.as_str().into(),
            message.kind.into(),
            message.text.as_str().into(),
            at.into(),
        ]);
        self.emails.push(outbox::QueuedEmail::new(
            envelope.position,
            person,
            &organization,
            message,
            at,
        )?);
        Ok(())
    }

    async fn write(self, tx: &mut Tx<'_>, handoff: Option<&EmailHandoff>) -> Result<(), Error> {
        let (added, removed): (Vec<_>, Vec<_>) = self
            .security_official_changes
            .into_iter()
            .partition(|(_, is_one)| *is_one);
        let rows = |changes: Vec<((String, String), bool)>| {
            changes
                .into_iter()
                .map(|((organization, person), _)| vec![organization.into(), person.into()])
                .collect()
        };
        tx.execute_rows(rows(removed), |keys| {
            format!(
                "DELETE FROM {SECURITY_OFFICIALS} WHERE (organization_id, person_id) IN ({keys})"
            )
        })
        .await?;
        tx.execute_rows(rows(added), |values| {
            format!(
                "INSERT INTO {SECURITY_OFFICIALS} (organization_id, person_id) {values} \
                 ON CONFLICT (organization_id, person_id) DO NOTHING"
            )
        })
        .await?;
        tx.execute_rows(self.notifications, |values| {
            format!(
                "INSERT INTO {NOTIFICATIONS} (position, person_id, organization_id, kind, message, at) \
                 {values} ON CONFLICT (person_id, position) DO NOTHING"
            )
        })
        .await?;
        outbox::queue(tx, self.emails, handoff).await
    }
}

/// Who is told what of one event: the requester or the person acted upon, and for a new
/// pending request every Security Official of the organization as of this event.
fn apply(
    envelope: &Envelope,
    names: Option<&dyn OrganizationNames>,
    batch: &mut Told,
) -> Result<(), Error> {
    use OrganizationEvent::*;
    let organization = envelope.organization.to_string();
    let one = |person: &PersonId| vec![person.to_string()];
    let mut told: Vec<(Vec<String>, Notice)> = Vec::new();
    match &envelope.event {
        RoleRequested {
            person,
            role,
            path: DecisionPath::SecurityOfficialApproval,
            ..
        }
        | RoleRequestSentForApproval { person, role, .. } => {
            told.push((one(person), Notice::RequestSubmitted { role: *role }));
            let security_officials = batch.security_officials(&organization);
            told.push((
                security_officials,
                Notice::NewPendingRequest { role: *role },
            ));
        }
        // The verdict on the proof, in the same commit, is what the person is told.
        RoleRequested {
            path: DecisionPath::Proof,
            ..
        } => {}
        ProofRejected {
            person,
            mismatch,
            attempts_remaining,
            ..
        } => {
            // The third failure is told by the RequesterBlocked of the same commit.
            if *attempts_remaining > 0 {
                told.push((
                    one(person),
                    Notice::ProofRejected {
                        mismatch: *mismatch,
                        attempts_remaining: *attempts_remaining,
                    },
                ));
            }
        }
        RequesterBlocked { person, ticket, .. } => {
            told.push((one(person), Notice::Blocked { ticket }));
        }
        RequesterUnblocked { person, ticket, .. } => {
            told.push((one(person), Notice::Unblocked { ticket }));
        }
        // Every approval (proof verified, a Security Official's, the help desk's) is
        // followed by the grant in the same commit, which alone names the role.
        ProofAccepted { .. } | RoleRequestApproved { .. } => {}
        RoleGranted {
            person, role, by, ..
        } => {
            batch.set_security_official(&organization, person, *role == Role::SecurityOfficial);
            told.push((
                one(person),
                Notice::Approved {
                    role: *role,
                    automatically: by.is_none(),
                },
            ));
        }
        RoleRequestDenied { person, reason, .. } => {
            told.push((
                one(person),
                Notice::Denied {
                    reason: reason.as_deref(),
                },
            ));
        }
        TicketResolved {
            person,
            approved: false,
            ticket,
            note,
            ..
        } => {
            told.push((
                one(person),
                Notice::DeniedOnReview {
                    ticket,
                    note: note.as_deref(),
                },
            ));
        }
        TicketResolved { approved: true, .. } => {}
        // The requester's own doing, and nobody else's concern.
        RoleRequestWithdrawn { .. } => {}
        ClinicianRoleGranted { person, .. } => {
            batch.set_security_official(&organization, person, false);
            told.push((one(person), Notice::ClinicianGranted));
        }
        // Recorded for support; the claimant was answered at once.
        ClinicianClaimRefused { .. } => {}
        StaffUserRevoked { person, reason, .. } => {
            batch.set_security_official(&organization, person, false);
            told.push((
                one(person),
                Notice::Revoked {
                    reason: reason.as_deref(),
                },
            ));
        }
        SecurityOfficialRemoved { person, note, .. } => {
            batch.set_security_official(&organization, person, false);
            told.push((
                one(person),
                Notice::RemovedAsSecurityOfficial {
                    note: note.as_deref(),
                },
            ));
        }
        RoleChanged {
            person,
            from,
            to,
            note,
            ..
        } => {
            batch.set_security_official(&organization, person, *to == Role::SecurityOfficial);
            told.push((
                one(person),
                Notice::RoleChanged {
                    from: *from,
                    to: *to,
                    note: note.as_deref(),
                },
            ));
        }
    }
    if told.is_empty() {
        return Ok(());
    }
    let name = names
        .and_then(|names| names.legal_name(&envelope.organization))
        .unwrap_or_else(|| {
            let id = &envelope.organization;
            format!("{} {}", id.kind().label(), mask_tail(id.key_str(), 4))
        });
    for (people, notice) in told {
        let message = notice.render(&name);
        for person in people {
            batch.tell(envelope, &person, &message)?;
        }
    }
    Ok(())
}

impl Views {
    /// The person's notifications, newest first: the latest 200, or the latest 200 unread.
    pub async fn notifications(
        &self,
        person: &PersonId,
        unread_only: bool,
    ) -> Result<Vec<Notification>, Error> {
        fetch(
            &self.database,
            &format!(
                "SELECT position, organization_id, kind, message, at, read_at FROM {NOTIFICATIONS} \
                  WHERE person_id = $1 AND ($2 = 0 OR read_at IS NULL) \
                  ORDER BY position DESC LIMIT $3"
            ),
            params![person.as_str(), i64::from(unread_only), MOST_NOTIFICATIONS],
            |row| {
                Ok(Notification {
                    position: row.int(0)?,
                    organization: parse_id(&row.text(1)?, NOTIFICATIONS, "organization_id")?,
                    kind: row.text(2)?,
                    message: row.text(3)?,
                    at: parse_time(&row.text(4)?, NOTIFICATIONS, "at")?,
                    read: row.opt_text(5)?.is_some(),
                })
            },
        )
        .await
    }

    /// Marks the person's notification of the event at `position` read (again is
    /// harmless); false when they have none there.
    ///
    /// The one write the views take from outside the projector: what a person has read is
    /// not an event.
    pub async fn mark_notification_read(
        &self,
        person: &PersonId,
        position: i64,
    ) -> Result<bool, Error> {
        let marked = fetch(
            &self.writes,
            &format!(
                "UPDATE {NOTIFICATIONS} SET read_at = COALESCE(read_at, $3) \
                      WHERE person_id = $1 AND position = $2 RETURNING position"
            ),
            params![person.as_str(), position, Utc::now()],
            |row| row.int(0),
        )
        .await?;
        Ok(!marked.is_empty())
    }
}
