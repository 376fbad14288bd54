//! The on-screen notifications (`notifications`, `markNotificationRead`) and the people
//! directory the emails are addressed from. A person only ever sees and marks their own
//! notifications: anyone else's id is as unknown as one that never existed.
//!
//! A notification's id is `<event position>:<person id>`: one event may tell several
//! people (a new request, every Security Official), each of whom gets an id of their own.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use access_domain::identifiers::PersonId;
use async_graphql::ID;

use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::per_person::PerPerson;
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
/// that the emails it causes reach the address the identity provider vouches for now. The
/// row is handed over, not waited for: it is committed with the mutation's events, or
/// before them (docs/notifications.md). A failure is logged and the mutation goes on: its
/// emails would be undeliverable, the command is not at stake.
pub(crate) fn remember(service: &AccessService, identity: &Identity) {
    if !service.recently_remembered().needs_recording(identity) {
        return;
    }
    let recorded = service.people().record(
        &identity.person,
        identity.display_name.as_deref(),
        identity.email.as_deref(),
    );
    let (service, person) = (service.clone(), identity.person.clone());
    tokio::spawn(async move {
        let committed = match recorded {
            Ok(recorded) => recorded.committed().await,
            Err(error) => Err(error),
        };
        if let Err(error) = committed {
            service.recently_remembered().forget(&person);
            tracing::warn!(%error, "could not record the caller's name and email for notifications");
        }
    });
}

/// Whose name and address this process recorded lately, so a burst of mutations by one
/// person writes the people table once. Entries expire, so a row erased meanwhile
/// (`access-server erase-person`) is written again by the person's next mutation
/// within minutes.
#[derive(Default)]
pub(crate) struct RecentlyRemembered(Mutex<PerPerson<Recorded>>);

struct Recorded {
    display_name: Option<String>,
    email: Option<String>,
    at: Instant,
}

const REMEMBER_AGAIN_AFTER: Duration = Duration::from_secs(300);

impl RecentlyRemembered {
    /// True unless the same name and address were recorded for the person lately;
    /// counts them as recorded from now on.
    fn needs_recording(&self, identity: &Identity) -> bool {
        let mut recorded = self.0.lock().expect("never poisoned");
        let fresh = recorded.entries.get(&identity.person).is_some_and(|seen| {
            seen.display_name == identity.display_name
                && seen.email == identity.email
                && seen.at.elapsed() < REMEMBER_AGAIN_AFTER
        });
        if fresh {
            return false;
        }
        recorded.prune_when_grown(|seen| seen.at.elapsed() >= REMEMBER_AGAIN_AFTER);
        recorded.entries.insert(
            identity.person.clone(),
            Recorded {
                display_name: identity.display_name.clone(),
                email: identity.email.clone(),
                at: Instant::now(),
            },
        );
        true
    }

    fn forget(&self, person: &PersonId) {
        self.0
            .lock()
            .expect("never poisoned")
            .entries
            .remove(person);
    }
}
