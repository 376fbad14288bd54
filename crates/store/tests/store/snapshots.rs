use std::collections::HashMap;

use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database, Pool, SNAPSHOT_AFTER_REPLAYING};

use crate::counter::{Counter, CounterCommand};
use crate::{execute, scalar};

/// What a server process starting on the database is: a store with an empty cache.
async fn fresh_process(url: &str, state_version: i32) -> AggregateStore<Counter> {
    AggregateStore::new(&Database::connect(url).await.unwrap(), ()).with_snapshots(state_version)
}

async fn add(store: &AggregateStore<Counter>, events: usize) {
    store
        .execute(
            "c-1",
            CounterCommand::Add { events },
            HashMap::new(),
            |_, _| (),
        )
        .await
        .unwrap();
}

async fn count(store: &AggregateStore<Counter>) -> usize {
    store.read("c-1", |counter| counter.count).await.unwrap()
}

/// The count a process starting now reads, keeping snapshots of layout `state_version`.
async fn count_on_start(url: &str, state_version: i32) -> usize {
    count(&fresh_process(url, state_version).await).await
}

/// Overwrites the kept snapshot's state, as a corrupted or foreign row would be.
async fn set_kept_state(database: &Database, state: &str) {
    execute(
        database,
        &format!("UPDATE aggregate_snapshots SET state = '{state}'"),
    )
    .await;
}

async fn kept_state(database: &Database) -> String {
    let sql = "SELECT state FROM aggregate_snapshots";
    match database.pool() {
        Pool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Pool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap()
}

#[tokio::test]
async fn a_load_that_replays_many_events_keeps_a_snapshot_that_later_loads_start_from() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let writer = fresh_process(&db.url, 1).await;
        let few = SNAPSHOT_AFTER_REPLAYING - 1;
        add(&writer, few).await;
        assert_eq!(count_on_start(&db.url, 1).await, few);
        let kept = "SELECT count(*) FROM aggregate_snapshots";
        assert_eq!(
            scalar(&database, kept).await,
            0,
            "{}: few events, no snapshot",
            db.label
        );
        let unsnapshotted = AggregateStore::<Counter>::new(&database, ());
        let many = few + 201;
        add(&writer, 201).await;
        assert_eq!(count(&unsnapshotted).await, many);
        assert_eq!(
            scalar(&database, kept).await,
            0,
            "{}: snapshots not asked for",
            db.label
        );

        assert_eq!(count_on_start(&db.url, 1).await, many);
        let sequence = "SELECT sequence FROM aggregate_snapshots WHERE aggregate_id = 'c-1'";
        assert_eq!(
            scalar(&database, sequence).await,
            many as i64,
            "{}",
            db.label
        );
        let state = format!(r#"{{"count":{many}}}"#);
        assert_eq!(kept_state(&database).await, state, "{}", db.label);

        // A state the events could never produce shows which one a load started from.
        set_kept_state(&database, r#"{"count":7}"#).await;
        assert_eq!(
            count_on_start(&db.url, 1).await,
            7,
            "{}: the load did not start from the snapshot",
            db.label
        );
        add(&writer, 1).await;
        assert_eq!(
            count_on_start(&db.url, 1).await,
            many + 1,
            "{}: the events after the snapshot were not applied",
            db.label
        );
        assert_eq!(
            scalar(&database, sequence).await,
            many as i64,
            "{}: one event replayed",
            db.label
        );
    }
}

#[tokio::test]
async fn a_snapshot_that_does_not_read_or_has_another_layout_is_passed_over_and_replaced() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let writer = fresh_process(&db.url, 1).await;
        let many = SNAPSHOT_AFTER_REPLAYING + 200;
        let state = format!(r#"{{"count":{many}}}"#);
        add(&writer, many).await;
        assert_eq!(count_on_start(&db.url, 1).await, many);

        set_kept_state(&database, r#"{"tally":1}"#).await;
        assert_eq!(count_on_start(&db.url, 1).await, many, "{}", db.label);
        assert_eq!(kept_state(&database).await, state, "{}", db.label);

        set_kept_state(&database, r#"{"count":7}"#).await;
        assert_eq!(
            count_on_start(&db.url, 2).await,
            many,
            "{}: a snapshot of layout 1 was read as layout 2",
            db.label
        );
        let version = "SELECT CAST(state_version AS bigint) FROM aggregate_snapshots";
        assert_eq!(scalar(&database, version).await, 2, "{}", db.label);
        assert_eq!(kept_state(&database).await, state, "{}", db.label);
    }
}
