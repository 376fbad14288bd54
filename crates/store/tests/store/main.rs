//! The store's behaviour on every database `fresh_databases()` yields: SQLite always,
//! PostgreSQL when `TEST_DATABASE_URL` is set. One test binary, to link sqlx once.

mod aggregate;
mod concurrency;
mod connect;
mod counter;
mod global_position;
mod migrations;
mod tickets;
mod upstream_edge_cases;

use access_store::{Database, Pool};

/// A single integer from `sql`, whichever database it is.
pub async fn scalar(database: &Database, sql: &str) -> i64 {
    match database.pool() {
        Pool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Pool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|error| panic!("{}: {sql}: {error}", database.describe()))
}
