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

mod aggregate_store;
mod database;
mod error;
mod migrations;
#[cfg(feature = "test-support")]
pub mod testing;

pub use aggregate_store::{AggregateStore, Committed};
pub use database::{Database, Pool, StoredEvent};
pub use error::StoreError;
