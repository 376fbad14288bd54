//! The global log as the views read it: stored events decoded into the domain's types.

use access_domain::identifiers::{OrganizationId, PersonId};
use access_domain::{Organization, OrganizationEvent};
use access_store::{Database, StoredEvent};
use cqrs_es::Aggregate;
use serde::Deserialize;

use crate::error::Error;

/// One organization event with where it sits in the log.
#[derive(Clone)]
pub(crate) struct Envelope {
    pub position: i64,
    pub organization: OrganizationId,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// As stored, for the audit log, which shows events exactly as recorded.
    pub payload: serde_json::Value,
    pub event: OrganizationEvent,
}

impl Envelope {
    /// `None` for another aggregate type's event, which no view shows.
    pub(crate) fn decode(stored: StoredEvent) -> Result<Option<Envelope>, Error> {
        if stored.aggregate_type != Organization::TYPE {
            return Ok(None);
        }
        let undecodable = || Error::Undecodable {
            position: stored.position,
            event_type: stored.event_type.clone(),
        };
        // The payload is externally tagged (`{"RoleRequested": {...}}`), as the domain
        // type serializes.
        let event = OrganizationEvent::deserialize(&stored.payload).map_err(|_| undecodable())?;
        let organization =
            OrganizationId::parse(&stored.aggregate_id).map_err(|_| undecodable())?;
        Ok(Some(Envelope {
            position: stored.position,
            organization,
            sequence: stored.sequence,
            event_type: stored.event_type,
            event_version: stored.event_version,
            payload: stored.payload,
            event,
        }))
    }

    /// The full id of the request an event names: `<organization id>/<uuid>`.
    pub(crate) fn request_key(&self, request: &uuid::Uuid) -> String {
        format!("{}/{request}", self.organization)
    }
}

/// The person an event is about, when the event names them. Decisions name only the
/// request, so they have none (the `RoleGranted` that follows an approval does).
pub(crate) fn subject(event: &OrganizationEvent) -> Option<&PersonId> {
    use OrganizationEvent::*;
    match event {
        RoleRequested { person, .. }
        | ProofRejected { person, .. }
        | ProofAccepted { person, .. }
        | RequesterBlocked { person, .. }
        | RoleRequestSentForApproval { person, .. }
        | RoleRequestWithdrawn { person, .. }
        | RoleRequestApproved { person, .. }
        | RoleRequestDenied { person, .. }
        | RoleGranted { person, .. }
        | ClinicianRoleGranted { person, .. }
        | ClinicianClaimRefused { person, .. }
        | StaffUserRevoked { person, .. }
        | TicketResolved { person, .. }
        | RequesterUnblocked { person, .. }
        | RoleChanged { person, .. }
        | SecurityOfficialRemoved { person, .. } => Some(person),
    }
}

/// Consecutive events of the log, applied in one transaction.
pub(crate) struct Batch {
    pub events: Vec<Envelope>,
    /// The position of the last event read, counting events no view shows, so that the
    /// checkpoint moves past them.
    pub through: i64,
}

/// Up to `limit` events after `position`, never ending inside a commit.
///
/// A command's events are committed together and hold consecutive positions (appends
/// are serialized), so a full batch drops its trailing run of events of one aggregate:
/// a view then never shows half a command, such as a proof-path request without the
/// proof's verdict. A run filling the whole batch is kept, or nothing would progress.
pub(crate) async fn read_batch(
    database: &Database,
    position: i64,
    limit: i64,
) -> Result<Batch, Error> {
    let mut stored = database.events_after(position, limit).await?;
    if i64::try_from(stored.len()).is_ok_and(|read| read == limit) {
        if let Some(last) = stored.last() {
            let same_aggregate = |event: &StoredEvent| {
                event.aggregate_type == last.aggregate_type
                    && event.aggregate_id == last.aggregate_id
            };
            if let Some(end) = stored.iter().rposition(|event| !same_aggregate(event)) {
                stored.truncate(end + 1);
            }
        }
    }
    let through = stored.last().map_or(position, |event| event.position);
    let mut events = Vec::with_capacity(stored.len());
    for event in stored {
        events.extend(Envelope::decode(event)?);
    }
    Ok(Batch { events, through })
}
