//! The store's behaviour on every database `fresh_databases()` yields: SQLite always,
//! PostgreSQL when `TEST_DATABASE_URL` is set. One test binary, to link sqlx once.

mod aggregate;
mod concurrency;
mod connect;
mod counter;
mod fingerprints;
mod global_position;
mod migrations;
mod pipelined;
mod snapshots;
mod tickets;
mod upstream_edge_cases;

use std::sync::Arc;

use access_store::{AggregateStore, Database, Pool};

use crate::counter::Counter;

/// A single integer from `sql`, whichever database it is.
pub async fn scalar(database: &Database, sql: &str) -> i64 {
    match database.pool() {
        Pool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Pool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|error| panic!("{}: {sql}: {error}", database.describe()))
}

/// Runs a statement that answers nothing, whichever database it is.
pub async fn execute(database: &Database, sql: &str) {
    try_execute(database, sql)
        .await
        .unwrap_or_else(|error| panic!("{}: {sql}: {error}", database.describe()));
}

/// [`execute`] for a statement the database may refuse: its error.
pub async fn try_execute(database: &Database, sql: &str) -> Result<(), sqlx::Error> {
    match database.pool() {
        Pool::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Pool::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
}

/// Two stores with their own caches and connections on one database: what two server
/// processes are to each other.
pub async fn two_processes(url: &str) -> [Arc<AggregateStore<Counter>>; 2] {
    let process = || async {
        Arc::new(AggregateStore::new(
            &Database::connect(url).await.unwrap(),
            (),
        ))
    };
    [process().await, process().await]
}
