//! What happened to role requests, as every server process learns it from the log:
//! subscriptions (`pendingRequestsChanged`, `myRequestUpdated`) are fed from here, so a
//! Security Official's open page hears of a request made through any process. Reading
//! needs no lease, so every process follows the log for its own subscribers.

use access_domain::identifiers::{PersonId, RoleRequestId};

use crate::events::Envelope;

/// A role request changed at `position`: read it from the views once they reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestChange {
    pub position: i64,
    pub request: RoleRequestId,
    pub requester: PersonId,
}

impl RequestChange {
    /// The change an event makes to a request, if it is about one and names its requester.
    pub(crate) fn of(envelope: &Envelope) -> Option<RequestChange> {
        let request = envelope.event.request_id()?;
        Some(RequestChange {
            position: envelope.position,
            request: RoleRequestId {
                organization: envelope.organization.clone(),
                request,
            },
            requester: crate::events::subject(&envelope.event)?.clone(),
        })
    }
}
