//! The on-screen notifications (`notifications`, `markNotificationRead`) and the people
//! directory the emails are addressed from. A person only ever sees and marks their own
//! notifications: anyone else's id is as unknown as one that never existed.
//!
//! A notification's id is `<event position>:<person id>`: one event may tell several
//! people (a new request, every Security Official), each of whom gets an id of their own.

use access_domain::identifiers::PersonId;
use access_projections::People;
use async_graphql::ID;

use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::read_models::Notification;
use crate::service::AccessService;

/// The caller's notifications, newest first.
pub(crate) async fn of(
    service: &AccessService,
    person: &PersonId,
    unread_only: bool,
) -> ApiResult<Vec<Notification>> {
    let notifications = service
        .views()
        .notifications(person, unread_only)
        .await
        .map_err(|error| ApiError::internal("reading notifications", &error))?;
    Ok(notifications
        .into_iter()
        .map(|notification| Notification {
            id: ID(format!("{}:{person}", notification.position)),
            at: notification.at,
            kind: notification.kind,
            message: notification.message,
            read: notification.read,
        })
        .collect())
}

/// Marks one of the caller's notifications read; NOT_FOUND for any other id.
pub(crate) async fn mark_read(
    service: &AccessService,
    person: &PersonId,
    id: &str,
) -> ApiResult<bool> {
    let not_found = || ApiError::NotFound(format!("You have no notification {id}."));
    let position = id
        .split_once(':')
        .filter(|(_, owner)| *owner == person.as_str())
        .and_then(|(position, _)| position.parse::<i64>().ok())
        .ok_or_else(not_found)?;
    let marked = service
        .views()
        .mark_notification_read(person, position)
        .await
        .map_err(|error| ApiError::internal("marking a notification read", &error))?;
    if marked {
        Ok(true)
    } else {
        Err(not_found())
    }
}

/// Records the name and address the caller's token gives, before their mutation runs, so
/// that the emails it causes reach the address the identity provider vouches for now. A
/// failure is logged and the mutation goes on: its emails would be undeliverable, the
/// command is not at stake.
pub(crate) async fn remember(service: &AccessService, identity: &Identity) {
    let people = People::new(service.database().clone());
    let remembered = people
        .remember(
            &identity.person,
            identity.display_name.as_deref(),
            identity.email.as_deref(),
        )
        .await;
    if let Err(error) = remembered {
        tracing::warn!(%error, "could not record the caller's name and email for notifications");
    }
}
