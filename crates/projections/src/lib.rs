//! The views (read models) of the access-management backend, fed from the event store's
//! global log rather than by cqrs-es queries (docs/adr/04-projections-from-the-global-log.md):
//! a view's rows and its checkpoint change in one transaction, so no crash can lose or
//! repeat an update. docs/projections.md has the tables and the operations.
//!
//! # Running
//!
//! [`Projector::start`] runs one task per [`View`]: catch up from the view's checkpoint,
//! then follow the log, woken by this process's commits
//! ([`Database::commits`](access_store::Database::commits)) and, on PostgreSQL, by
//! `LISTEN access_events` (other processes' commits), with a slow poll as the safety net.
//! With PostgreSQL, an advisory lock per view elects one writer among the servers; the
//! others stand by and take over within [`ProjectorOptions::retry_interval`] of its end.
//!
//! # Read-your-writes
//!
//! A mutation's answer must show its own effect. After a command:
//!
//! ```ignore
//! let committed = store.execute(&organization.to_string(), command).await?;
//! if let Some(position) = committed.position {
//!     projector.wait_for(position, Duration::from_secs(5)).await?; // Err(Lagging)
//! }
//! let request = views.role_request(&id).await?;
//! ```
//!
//! [`Projector::wait_for`] reads the checkpoints, so it works whichever server writes the
//! views. A [`Lagging`] after the timeout means the command did happen (it is durable) but
//! the views have not caught up: answer from the command's result, or report it.
//!
//! # Reading
//!
//! [`Views`] answers the contract's queries; every method is a read of the view tables
//! (except [`Views::access_as_of`], which folds the organization's events) and leaves
//! authorization to the caller:
//!
//! | contract | method |
//! |---|---|
//! | `manageAccess` | [`Views::manage_access`]`(person)` → [`ManageAccess`] (counts only for a Security Official) |
//! | `pendingRequests(organizationId, first, after)` | [`Views::pending_requests`]`(security_official, organization, first, after)` → [`PendingRequests`] (oldest first, `total_count`) |
//! | `organizationUsers` | [`Views::organization_users`]`(organization)` → `Vec<`[`Grant`]`>` |
//! | `roleRequest` | [`Views::role_request`]`(id)` → `Option<`[`RoleRequest`]`>` |
//! | `blockedAccounts` | [`Views::blocked_accounts`]`()` → open [`Ticket`]s (person, organization, `opened_at` = blocked at, masked attempts) |
//! | `supportTicket` | [`Views::support_ticket`]`(number)` → `Option<`[`Ticket`]`>`, with the organization for `ResolveTicket` |
//! | `auditLog(filter, first, after)` | [`Views::audit_log`]`(filter, first, after)` → [`Page`]`<`[`AuditEntry`]`>` |
//! | `accessAsOf` | [`Views::access_as_of`]`(organization, at)` → `Vec<`[`Grant`]`>` |
//! | `notifications(unreadOnly)` | [`Views::notifications`]`(person, unread_only)` → `Vec<`[`Notification`]`>` (newest first) |
//! | `markNotificationRead(id)` | [`Views::mark_notification_read`]`(person, position)` → false when they have none there |
//!
//! Cursors are opaque strings; one the query never issued is [`Error::InvalidCursor`]
//! (an `INVALID_INPUT`). Pages are keyset pages, stable while events keep arriving.
//!
//! # Notifications
//!
//! The view [`View::Notifications`] tells people of the changes that concern them: a row
//! on screen and a queued email per event and person, worded by one template module and
//! naming organizations through [`ProjectorOptions::organization_names`]. The [`Outbox`]
//! is the email queue a sender drains; [`People`] is the directory of addresses it sends
//! to. docs/notifications.md has who is told what, and the delivery guarantees.
//!
//! # Operating
//!
//! [`rebuild`] refills views (of [`View::REBUILDABLE`]) from position 0 into fresh tables and swaps them in while
//! the live ones keep serving; [`export_audit`] streams the log as JSON lines or CSV.
//! Both back `access-server rebuild` and `access-server export-audit`.

mod access;
mod audit;
mod error;
mod events;
mod feed;
mod grouped;
mod notifications;
mod projector;
mod read;
mod rebuild;
mod remembered;
mod sql;
mod support;
mod view;

pub use access::{
    Connection, Grant, ManageAccess, ManageAccessTab, PendingRequests, RoleRequest, UserCounts,
};
pub use audit::{export_audit, AuditEntry, AuditFilter, ExportFormat};
pub use error::Error;
pub use feed::RequestChange;
pub use grouped::AppendGroups;
pub use notifications::{
    EmailHandoff, EmailState, EmailsHanded, ErasedContact, HandedEmails, Notification,
    OrganizationNames, Outbox, Outcome, PendingEmail, People, Recorded, UndeliveredEmail,
};
#[cfg(feature = "fail-points")]
pub use projector::FailPoint;
pub use projector::{Appended, Lagging, Projector, ProjectorOptions};
pub use read::{Edge, Page, Views};
pub use rebuild::{rebuild, RebuildProgress, Rebuilt};
pub use remembered::ReadTicket;
pub use support::{FailedProof, Ticket};
pub use view::{checkpoints, View};
