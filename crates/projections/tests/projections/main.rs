//! The projections on every database `fresh_databases()` yields: SQLite always,
//! PostgreSQL when `TEST_DATABASE_URL` is set. One test binary, to link sqlx once.

mod common;

mod as_of;
mod batches;
mod crash;
mod export;
mod fold;
mod grouped;
mod leases;
mod notifications;
mod people;
mod read_your_writes;
mod reads;
mod rebuild;
mod remembered;
mod throughput;
mod upgrades;
