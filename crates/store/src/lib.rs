//! Persistence for the access-management backend: the event store on SQLite (the
//! zero-set-up default) or PostgreSQL (`DATABASE_URL=postgres://…`), behind one API.
//!
//! - [`Database`] opens the configured database and migrates it; it also reads the
//!   whole event log in commit order ([`Database::events_after`]), signals this
//!   process's commits ([`Database::commits`]) and issues help-desk ticket serials.
//! - [`AggregateStore`] runs commands on any `cqrs_es::Aggregate` through sqlite-es or
//!   postgres-es, whose table layout the migrations reproduce exactly.
//!
//! The schema lives in `event-store/<db>/` (and the views' tables in `projections/<db>/`)
//! as plain SQL and is compiled in; see
//! docs/adr/02-global-position.md for why events carry a trigger-assigned position.

/// Runs one sqlx expression on whichever pool is configured. The SQL is written once with
/// `$N` placeholders, which both drivers accept; the arms must agree on a type, so map
/// driver-specific results (e.g. `.map(|done| done.rows_affected())`) inside.
macro_rules! on_pool {
    ($database:expr, |$pool:ident| $body:expr) => {
        match $database.pool() {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}

mod aggregate_store;
mod appends;
mod database;
mod error;
mod idempotency;
mod migrations;
mod snapshots;
#[cfg(feature = "test-support")]
pub mod testing;

pub use aggregate_store::{
    AggregateStore, Committed, ReportsMark, CACHED_EVENTS, SNAPSHOT_AFTER_REPLAYING,
};
pub use appends::{AppendQueue, AppendedAt, PendingAppend};
pub use database::{postgres_pool_options, Database, Pool, StoredEvent};
pub use error::StoreError;
pub use idempotency::{IdempotentStart, KEEP_ANSWERS_FOR, REQUEST_METADATA};
