//! The views, their checkpoints and the hand-over of a batch of events to each view's
//! logic: the one place where events become rows, shared by the live projector and the
//! rebuild.

use std::borrow::Cow;
use std::fmt;

use access_store::Database;

use crate::error::Error;
use crate::events::Batch;
use crate::notifications;
use crate::projector::ProjectorOptions;
use crate::sql::{fetch, params, Tx};
use crate::{access, support};

/// A view: tables updated together, with one checkpoint, one lease and one rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    /// Grants and role requests: Manage Access, the pending queue, organization users.
    Access,
    /// Help-desk tickets and masked failed proofs: blocked accounts, tickets.
    Support,
    /// What each person is told, on screen and by email (the outbox). Never rebuilt.
    Notifications,
}

impl View {
    pub const ALL: [View; 3] = [View::Access, View::Support, View::Notifications];

    /// The views `rebuild` can refill from the events. Notifications are not among them:
    /// what people read and which emails went out is in no event, and a replay would
    /// mail everyone again.
    pub const REBUILDABLE: [View; 2] = [View::Access, View::Support];

    /// The name in `projection_checkpoints`, in logs and on the `rebuild` command line.
    pub fn name(self) -> &'static str {
        match self {
            View::Access => "access",
            View::Support => "support",
            View::Notifications => "notifications",
        }
    }

    pub fn parse(name: &str) -> Option<View> {
        View::ALL.into_iter().find(|view| view.name() == name)
    }

    pub(crate) fn tables(self) -> &'static [&'static str] {
        match self {
            View::Access => &[access::GRANTS, access::REQUESTS],
            View::Support => &[support::TICKETS, support::FAILED_PROOFS],
            View::Notifications => &[
                notifications::SECURITY_OFFICIALS,
                notifications::NOTIFICATIONS,
                notifications::OUTBOX,
            ],
        }
    }

    /// The second half of the view's PostgreSQL advisory-lock key; numbered like the
    /// views' migrations so that they never meet the event store's (…, 1).
    pub(crate) fn lease_key(self) -> i32 {
        match self {
            View::Access => 1001,
            View::Support => 1002,
            View::Notifications => 1004,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            View::Access => 0,
            View::Support => 1,
            View::Notifications => 2,
        }
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which tables an update goes to: the live ones, or the fresh ones a rebuild fills
/// while the live ones keep serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Live,
    Rebuild,
}

impl Target {
    pub(crate) fn table(self, name: &'static str) -> Cow<'static, str> {
        match self {
            Target::Live => Cow::Borrowed(name),
            Target::Rebuild => Cow::Owned(format!("{name}_rebuild")),
        }
    }
}

/// Applies consecutive events to one view's tables. `live`, the live projector's
/// options, words the notifications and hands their emails over (only the live projector
/// writes them).
pub(crate) async fn apply_batch(
    view: View,
    target: Target,
    tx: &mut Tx<'_>,
    batch: &Batch,
    live: Option<&ProjectorOptions>,
) -> Result<(), Error> {
    match view {
        View::Access => access::apply_batch(target, tx, &batch.events).await,
        View::Support => {
            for event in &batch.events {
                support::apply(target, tx, event).await?;
            }
            Ok(())
        }
        View::Notifications => {
            let names = live.and_then(|options| options.organization_names.as_deref());
            let handoff = live.and_then(|options| options.email_handoff.as_ref());
            notifications::apply_batch(tx, &batch.events, names, handoff).await
        }
    }
}

/// The view's checkpoint, created at 0 the first time.
pub(crate) async fn ensure_checkpoint(database: &Database, view: View) -> Result<i64, Error> {
    let mut tx = Tx::begin(database).await?;
    tx.execute(
        "INSERT INTO projection_checkpoints (view, position) VALUES ($1, 0) \
         ON CONFLICT (view) DO NOTHING",
        params![view.name()],
    )
    .await?;
    let position = lock_checkpoint(&mut tx, view).await?;
    tx.commit().await?;
    Ok(position)
}

/// Reads the checkpoint and keeps every other writer of the view out until the
/// transaction ends: a second projector, or a rebuild swapping its tables in. On SQLite
/// the transaction's write lock already does that.
pub(crate) async fn lock_checkpoint(tx: &mut Tx<'_>, view: View) -> Result<i64, Error> {
    let sql = if tx.is_postgres() {
        "SELECT position FROM projection_checkpoints WHERE view = $1 FOR UPDATE"
    } else {
        "SELECT position FROM projection_checkpoints WHERE view = $1"
    };
    let positions = tx
        .fetch(sql, params![view.name()], |row| row.int(0))
        .await?;
    Ok(positions.into_iter().next().unwrap_or(0))
}

pub(crate) async fn set_checkpoint(
    tx: &mut Tx<'_>,
    view: View,
    position: i64,
) -> Result<(), Error> {
    tx.execute(
        "UPDATE projection_checkpoints SET position = $2 WHERE view = $1",
        params![view.name(), position],
    )
    .await
}

/// The position every view has reached (0 for a view that never ran).
pub(crate) async fn lowest_checkpoint(database: &Database) -> Result<i64, Error> {
    Ok(checkpoints(database)
        .await?
        .into_iter()
        .map(|(_, position)| position)
        .min()
        .unwrap_or(0))
}

/// Each view's checkpoint (0 for one that has not started), in `View::ALL` order.
pub async fn checkpoints(database: &Database) -> Result<Vec<(View, i64)>, Error> {
    let rows = fetch(
        database,
        "SELECT view, position FROM projection_checkpoints",
        params![],
        |row| Ok((row.text(0)?, row.int(1)?)),
    )
    .await?;
    Ok(View::ALL
        .iter()
        .map(|view| {
            let position = rows
                .iter()
                .find(|(name, _)| name == view.name())
                .map_or(0, |(_, position)| *position);
            (*view, position)
        })
        .collect())
}
