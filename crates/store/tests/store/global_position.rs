use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database, Pool};

use crate::counter::{Counter, CounterCommand};
use crate::{execute, scalar, try_execute};

const WRITERS: usize = 16;
const COMMANDS_PER_WRITER: usize = 60;
const AGGREGATES_PER_WRITER: usize = 5;

/// With a plain BIGSERIAL a transaction can draw a lower number than one that commits
/// before it; a reader that has moved past the higher number then never sees the lower
/// one. Many writers committing one to four events at a time while a reader tails the
/// log as fast as it can makes that interleaving overwhelmingly likely; the test after
/// this one forces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_make_a_tailing_reader_skip_or_repeat_an_event() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = Arc::new(AggregateStore::<Counter>::new(&database, ()));
        let writers_done = Arc::new(AtomicBool::new(false));

        let reader = tokio::spawn({
            let database = database.clone();
            let writers_done = writers_done.clone();
            async move {
                let mut last = 0;
                let mut seen = HashSet::new();
                loop {
                    // Read the flag first: an empty batch after the writers finished
                    // means every committed event has been read.
                    let finished = writers_done.load(Ordering::SeqCst);
                    let batch = database.events_after(last, 100).await.unwrap();
                    for event in &batch {
                        assert!(
                            event.position > last,
                            "position went back to {}",
                            event.position
                        );
                        last = event.position;
                        assert!(
                            seen.insert((event.aggregate_id.clone(), event.sequence)),
                            "{} #{} read twice",
                            event.aggregate_id,
                            event.sequence
                        );
                    }
                    if batch.is_empty() {
                        if finished {
                            return seen;
                        }
                        tokio::task::yield_now().await;
                    }
                }
            }
        });

        let writers = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut appended = 0;
                    for command in 0..COMMANDS_PER_WRITER {
                        let events = 1 + (writer + command) % 4;
                        let id = format!("counter-{writer}-{}", command % AGGREGATES_PER_WRITER);
                        store
                            .execute(
                                &id,
                                CounterCommand::Add { events },
                                HashMap::new(),
                                |_, _| (),
                            )
                            .await
                            .unwrap();
                        appended += events;
                    }
                    appended
                })
            })
            .collect::<Vec<_>>();
        let mut appended = 0;
        for writer in writers {
            appended += writer.await.unwrap();
        }
        writers_done.store(true, Ordering::SeqCst);
        let seen = reader.await.unwrap();

        assert!(appended > 2000, "{}: only {appended} events", db.label);
        let stored = scalar(&database, "SELECT COUNT(*) FROM events").await;
        assert_eq!(stored as usize, appended, "{}", db.label);
        assert_eq!(
            seen.len(),
            appended,
            "{}: the reader missed events",
            db.label
        );
    }
}

/// Forces the interleaving a BIGSERIAL gets wrong: transaction 1 appends but has not
/// committed when transaction 2 appends and commits. Transaction 2 must wait for
/// transaction 1 and then get the higher position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waits_for_an_earlier_uncommitted_append_and_gets_the_higher_position() {
    // Literal SQL that both databases accept, so the race is written once.
    const FIRST: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) VALUES ('Raw', 'first', 1, 'Added', '1', '{}', '{}')";
    const SECOND: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) VALUES ('Raw', 'second', 1, 'Added', '1', '{}', '{}')";

    macro_rules! race {
        ($pool:expr, $label:expr) => {{
            let pool = $pool.clone();
            let mut first = pool.begin().await.unwrap();
            sqlx::query(FIRST).execute(&mut *first).await.unwrap();
            let second = tokio::spawn(async move {
                let mut second = pool.begin().await.unwrap();
                sqlx::query(SECOND).execute(&mut *second).await.unwrap();
                second.commit().await.unwrap();
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                !second.is_finished(),
                "{}: the second append did not wait for the first",
                $label
            );
            first.commit().await.unwrap();
            second.await.unwrap();
        }};
    }

    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        match database.pool() {
            Pool::Sqlite(pool) => race!(pool, db.label),
            Pool::Postgres(pool) => race!(pool, db.label),
        }
        let events = database.events_after(0, 10).await.unwrap();
        let order = events
            .iter()
            .map(|event| event.aggregate_id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(order, ["first", "second"], "{}", db.label);
    }
}

/// A writer naming a position could place an event below one a reader has passed. On
/// PostgreSQL the identity column refuses it; on SQLite the trigger renumbers the row
/// after the highest position.
#[tokio::test]
async fn an_event_never_keeps_a_position_its_writer_chose() {
    const APPEND: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) VALUES ('Raw', 'first', 1, 'Added', '1', '{}', '{}'), \
         ('Raw', 'first', 2, 'Added', '1', '{}', '{}')";
    const CHOSEN: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata, position) \
         VALUES ('Raw', 'chosen', 1, 'Added', '1', '{}', '{}', 0)";
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        execute(&database, APPEND).await;
        let chosen = try_execute(&database, CHOSEN).await;
        let positions = database
            .events_after(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|event| (event.aggregate_id, event.position))
            .collect::<Vec<_>>();
        match chosen {
            Ok(()) => assert_eq!(
                positions
                    .last()
                    .map(|(id, position)| (id.as_str(), *position)),
                Some(("chosen", 3)),
                "{}: {positions:?}",
                db.label
            ),
            Err(error) => {
                assert!(
                    error.to_string().contains("position"),
                    "{}: {error}",
                    db.label
                );
                assert_eq!(positions.len(), 2, "{}: {positions:?}", db.label);
            }
        }
    }
}

/// Listeners wake for a commit, whatever it appended, and read the log from where they
/// stand: one notification per inserting statement, naming its highest position, tells
/// them all they need.
#[tokio::test]
async fn a_statement_appending_several_events_notifies_its_highest_position_once() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let Pool::Postgres(pool) = database.pool() else {
            continue;
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .unwrap();
        listener.listen("access_events").await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) \
             SELECT 'Raw', 'many', n, 'Added', '1', '{}', '{}' FROM generate_series(1, 3) AS n",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        let nothing_before_the_commit =
            tokio::time::timeout(Duration::from_millis(200), listener.recv()).await;
        assert!(nothing_before_the_commit.is_err(), "{}", db.label);
        tx.commit().await.unwrap();
        let first = listener.recv().await.unwrap();
        let head = scalar(&database, "SELECT MAX(position) FROM events").await;
        assert_eq!(first.payload(), head.to_string(), "{}", db.label);
        let another = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
        assert!(
            another.is_err(),
            "{}: a second notification: {another:?}",
            db.label
        );
    }
}
