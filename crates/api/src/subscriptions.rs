//! The subscriptions' streams: request changes from the projector's feed (so
//! changes made through any server arrive), filtered for the subscriber, read
//! from the views once they show the change.

use std::time::Duration;

use access_domain::identifiers::{OrganizationId, PersonId};
use access_domain::roles::Role;
use access_projections::RequestChange;
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::service::AccessService;
use crate::types::RoleRequest;

/// How long a change waits for the views to show it before it is skipped.
const VIEW_WAIT: Duration = Duration::from_secs(5);

/// Whose changes a subscriber hears.
pub enum Audience {
    /// Other people's requests in the organizations `person` is Security
    /// Official of.
    SecurityOfficial {
        person: PersonId,
        organization: Option<OrganizationId>,
    },
    /// The person's own requests.
    Requester(PersonId),
}

pub fn request_updates(
    service: AccessService,
    audience: Audience,
) -> impl Stream<Item = RoleRequest> {
    let changes = service.projector().request_changes();
    stream::unfold(
        (changes, service, audience),
        |(mut changes, service, audience)| async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a subscriber fell behind the request feed");
                        continue;
                    }
                    Err(RecvError::Closed) => return None,
                };
                if let Some(request) = deliverable(&service, &audience, &change).await {
                    return Some((request, (changes, service, audience)));
                }
            }
        },
    )
}

/// The request as the views show it after `change`, if the audience may see it.
async fn deliverable(
    service: &AccessService,
    audience: &Audience,
    change: &RequestChange,
) -> Option<RoleRequest> {
    let organization = &change.request.organization;
    match audience {
        Audience::Requester(person) if *person != change.requester => return None,
        Audience::SecurityOfficial {
            organization: Some(wanted),
            ..
        } if wanted != organization => return None,
        // Their own requests are theirs to follow with myRequestUpdated.
        Audience::SecurityOfficial { person, .. } if *person == change.requester => return None,
        _ => {}
    }
    if let Err(lagging) = service
        .projector()
        .wait_for(change.position, VIEW_WAIT)
        .await
    {
        tracing::warn!(%lagging, "skipping a request change the views have not reached");
        return None;
    }
    let views = service.views();
    if let Audience::SecurityOfficial { person, .. } = audience {
        let users = views.organization_users(organization).await.ok()?;
        let is_security_official = users
            .iter()
            .any(|grant| &grant.person == person && grant.role == Role::SecurityOfficial);
        if !is_security_official {
            return None;
        }
    }
    match views.role_request(&change.request).await {
        Ok(request) => request.map(RoleRequest),
        Err(error) => {
            tracing::warn!(%error, "reading a changed request for a subscriber");
            None
        }
    }
}
